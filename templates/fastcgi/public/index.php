<?php
// A placeholder front controller: replace public/ with your PHP site (WordPress,
// Laravel's public/, ...) or point root in tronada.toml at it.
header('Content-Type: text/html; charset=utf-8');
?>
<!doctype html>
<title>{{name}}</title>
<h1>{{name}}</h1>
<p>PHP <?= htmlspecialchars(PHP_VERSION) ?> behind tronada; you asked for
<?= htmlspecialchars($_SERVER['REQUEST_URI']) ?>.</p>
