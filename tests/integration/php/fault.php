<?php
// For test_faults.py: records which php-fpm child runs it (so the test can kill that
// child), then either stays quiet (mode=quiet: nothing sent yet when it dies) or streams
// a line every 50 ms (the response has begun when it dies).
file_put_contents($_GET['pidfile'], (string)getmypid());
if (($_GET['mode'] ?? '') === 'quiet') {
    sleep(30);
    echo "not killed\n";
    exit;
}
header('Content-Type: text/plain');
for ($i = 0; $i < 600; $i++) {
    echo "line $i\n";
    @ob_flush();
    flush();
    usleep(50000);
}
echo "not killed\n";
