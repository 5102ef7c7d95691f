<?php
header('Location: /php/sub/');
