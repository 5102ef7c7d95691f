<?php
session_save_path(sys_get_temp_dir());
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
setcookie('seen', 'yes');
header('Content-Type: text/plain');
echo 'visits=', $_SESSION['n'];
