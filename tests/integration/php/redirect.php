<?php
// Client redirects (absolute, relative, with a status) and a CGI local redirect.
$kind = $_GET['kind'] ?? 'relative';
if ($kind === 'absolute') {
    header('Location: http://example.com/elsewhere');
} elseif ($kind === 'permanent') {
    header('Location: /server.php?from=permanent', true, 301);
} else {
    header('Location: /server.php?from=redirect');
}
