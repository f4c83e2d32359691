<?php
// Streams N MiB in 64 KiB pieces, flushing each.
while (ob_get_level()) {
    ob_end_flush();
}
$mib = (int)($_GET['mib'] ?? 1);
$piece = str_repeat('abcdefgh', 8192);
for ($i = 0; $i < $mib * 16; $i++) {
    echo $piece;
    flush();
}
