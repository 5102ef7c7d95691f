<?php
usleep((int)(1000000 * (float)($_SERVER['QUERY_STRING'] ?: '1')));
echo 'slept';
