<?php
// A status of the caller's choice and several cookies.
http_response_code((int)($_GET['code'] ?? 418));
setcookie('first', 'one');
setcookie('second', 'two', ['path' => '/sub', 'httponly' => true]);
setcookie('third', 'three; not a cookie');
header('X-Custom: yes');
echo "status page\n";
