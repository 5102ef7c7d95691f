<?php
http_response_code(418);
header('X-Teapot: short and stout');
echo "I'm a teapot";
