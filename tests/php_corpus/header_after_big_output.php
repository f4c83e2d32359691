<?php
// output_buffering=4096: the buffer flushes before the header call.
echo str_repeat('x', 5000);
header('X-Late: 1');
echo "\nsent=", var_export(headers_sent($f, $l), true), ' line=', $l;
