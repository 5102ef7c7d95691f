<?php
header('Content-Type: application/octet-stream');
$size = (int)$_SERVER['QUERY_STRING'];
$block = '';
for ($i = 0; $i < 256; $i++) $block .= chr($i);
$block = str_repeat($block, 256);
header('Content-Length: ' . $size);
for ($sent = 0; $sent < $size; $sent += strlen($block)) {
    echo substr($block, 0, min(strlen($block), $size - $sent));
}
