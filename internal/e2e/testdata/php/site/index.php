<?php
// Front controller: reports what PHP saw, as JSON.
header('Content-Type: application/json');
$keys = ['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PATH_INFO', 'REQUEST_URI', 'DOCUMENT_ROOT', 'QUERY_STRING',
         'REQUEST_METHOD', 'HTTPS', 'REMOTE_ADDR', 'SERVER_NAME', 'SERVER_PORT', 'REDIRECT_STATUS',
         'PHP_SELF', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'HTTP_X_CUSTOM', 'REQUEST_SCHEME'];
$server = [];
foreach ($keys as $k) {
    if (isset($_SERVER[$k])) $server[$k] = $_SERVER[$k];
}
echo json_encode(['server' => $server, 'get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE]);
