<?php
// Streams output in pieces with flush(), pausing between them.
header('Content-Type: text/plain');
$n = (int)($_GET['n'] ?? 5);
$delay = (int)($_GET['delay_ms'] ?? 100);
for ($i = 0; $i < $n; $i++) {
    echo "chunk $i ", str_repeat('x', 1000), "\n";
    @ob_flush();
    flush();
    usleep($delay * 1000);
}
echo "done\n";
