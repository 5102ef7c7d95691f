<?php
// Hands the file named by ?f= to the server, as a PHP download script
// behind nginx does; the echo is a body the server must drop.
header('Content-Type: application/x-report');
header('Content-Disposition: attachment; filename="report.bin"');
header('X-Accel-Redirect: ' . $_GET['f']);
echo "this body is replaced";
