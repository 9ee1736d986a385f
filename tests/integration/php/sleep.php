<?php
// Sleeps, to trigger read timeouts.
sleep((int)($_GET['s'] ?? 5));
echo "slept\n";
