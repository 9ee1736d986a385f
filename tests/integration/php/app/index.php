<?php
// A tiny front controller: every path that is not a file comes here.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: application/json');
$routes = [
    '/' => fn() => ['page' => 'home'],
    '/hello' => fn() => ['page' => 'hello', 'name' => $_GET['name'] ?? 'world'],
    '/posts' => fn() => ['page' => 'posts', 'method' => $_SERVER['REQUEST_METHOD'], 'title' => $_POST['title'] ?? null],
];
if (preg_match('#^/posts/(\d+)$#', $path, $m)) {
    echo json_encode(['page' => 'post', 'id' => (int)$m[1]]), "\n";
    return;
}
if (isset($routes[$path])) {
    echo json_encode($routes[$path]() + ['script' => $_SERVER['SCRIPT_NAME'], 'uri' => $_SERVER['REQUEST_URI']]), "\n";
    return;
}
http_response_code(404);
echo json_encode(['page' => 'not found', 'path' => $path]), "\n";
