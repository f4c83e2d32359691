<?php
// Drop the output_buffering=4096 buffer so flush() reaches the client.
while (ob_get_level()) { ob_end_flush(); }
ob_start();
for ($i = 0; $i < 3; $i++) {
    echo "chunk $i\n";
    ob_flush();
    flush();
}
ob_end_clean();
echo 'tail';
