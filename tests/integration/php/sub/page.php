<?php
// The CGI parameters, as server.php prints them, for a script below the root.
require __DIR__ . '/../server.php';
