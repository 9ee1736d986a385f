<?php
// A large body, for backpressure and many STDOUT records.
header('Content-Type: application/octet-stream');
$mb = (int)($_GET['mb'] ?? 4);
$block = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < $mb * 16; $i++) echo $block;
