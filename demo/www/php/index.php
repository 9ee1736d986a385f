<?php
// The demo's PHP page, run by php-fpm behind tronada's FastCGI route.
header('Content-Type: text/html; charset=utf-8');
?>
<!doctype html>
<title>PHP page</title>
<h1>Hello from PHP <?= htmlspecialchars(PHP_VERSION) ?></h1>
<p>This page comes from <code>demo/www/php/index.php</code>, run by php-fpm over FastCGI.
Request URI: <?= htmlspecialchars($_SERVER['REQUEST_URI']) ?>.</p>
<p><a href="/">Back</a>.</p>
