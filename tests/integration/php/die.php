<?php
// Ends the script early with die(), and optionally a fatal error.
header('Content-Type: text/plain');
echo "before\n";
if (isset($_GET['fatal'])) {
    undefined_function_here();
}
die("dying\n");
echo "never\n";
