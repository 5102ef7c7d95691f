<?php
error_log('boom from php');
throw new RuntimeException('boom from the app');
