<?php
header('Content-Type: application/json');
$out = [];
foreach ($_FILES as $field => $f) {
    $out[$field] = ['name' => $f['name'], 'size' => $f['size'], 'error' => $f['error'],
                    'sha256' => $f['error'] === 0 ? hash_file('sha256', $f['tmp_name']) : null];
}
echo json_encode(['files' => $out, 'post' => $_POST]);
