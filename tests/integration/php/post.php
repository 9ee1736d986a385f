<?php
// Echoes form fields, the raw body and uploaded files.
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $name => $f) {
    $files[$name] = [
        'name' => $f['name'],
        'size' => $f['size'],
        'error' => $f['error'],
        'md5' => $f['error'] === 0 ? md5_file($f['tmp_name']) : null,
    ];
}
$raw = file_get_contents('php://input');
echo json_encode([
    'post' => $_POST,
    'files' => $files,
    'raw_length' => strlen($raw),
    'raw_md5' => md5($raw),
    'raw_head' => preg_match('//u', substr($raw, 0, 64)) ? substr($raw, 0, 64) : bin2hex(substr($raw, 0, 32)),
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
], JSON_UNESCAPED_SLASHES), "\n";
