<?php
// Streams like a real app must under php.ini's output_buffering: leave
// PHP's own buffer first, then flush() reaches the client at once.
while (ob_get_level()) {
    ob_end_flush();
}
echo 'first|';
flush();
usleep((int)($_GET['pause'] ?? 500) * 1000);
echo 'second';
