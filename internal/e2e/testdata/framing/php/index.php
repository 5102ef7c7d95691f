<?php
// PHP front controller of the hostile framing suite (hostile_framing_test.go).
switch ('/' . basename(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH))) {
case '/long':
    header('Content-Length: 5');
    echo 'hello world';
    break;
case '/short':
    header('Content-Length: 20');
    echo 'hello';
    break;
case '/chunked':
    header('Transfer-Encoding: chunked');
    echo "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    break;
case '/early':
    http_response_code(103);
    break;
case '/switch':
    http_response_code(101);
    break;
case '/head':
    header('Content-Length: 5');
    echo 'hello';
    break;
default:
    echo 'ok';
}
