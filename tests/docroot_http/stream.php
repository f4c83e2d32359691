<?php
// First piece, flushed; then a pause the client can observe.
echo 'first|';
flush();
usleep((int)($_GET['pause'] ?? 500) * 1000);
echo 'second';
