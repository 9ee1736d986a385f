<?php
// Prints the CGI parameters PHP received, as JSON, for comparison between gateways.
header('Content-Type: application/json');
$keys = ['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PATH_INFO', 'PATH_TRANSLATED', 'REQUEST_URI',
         'DOCUMENT_URI', 'DOCUMENT_ROOT', 'QUERY_STRING', 'REQUEST_METHOD', 'CONTENT_TYPE',
         'CONTENT_LENGTH', 'SERVER_PROTOCOL', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE',
         'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_ADDR', 'SERVER_PORT', 'SERVER_NAME', 'HTTPS',
         'REDIRECT_STATUS', 'PHP_SELF', 'REQUEST_SCHEME'];
$out = [];
foreach ($keys as $k) {
    $out[$k] = $_SERVER[$k] ?? null;
}
$headers = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'HTTP_', 5) === 0) $headers[$k] = $v;
}
ksort($headers);
$out['headers'] = $headers;
$out['get'] = $_GET;
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
