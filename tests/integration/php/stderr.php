<?php
// Writes to the FastCGI error stream, then answers normally.
error_log('tronada-test-stderr-marker');
file_put_contents('php://stderr', "direct stderr line\n");
echo "logged\n";
