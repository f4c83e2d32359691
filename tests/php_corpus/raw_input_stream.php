<?php
// Read php://input in small pieces, as a streaming JSON parser would.
$in = fopen('php://input', 'rb');
$n = 0; $ctx = hash_init('sha1'); $reads = 0;
while (!feof($in)) {
    $chunk = fread($in, 8192);
    if ($chunk === false) { break; }
    $n += strlen($chunk); hash_update($ctx, $chunk); $reads++;
}
fclose($in);
echo $n, ' ', hash_final($ctx), ' ', $reads > 0 ? 'read' : 'none';
