<?php
// Drop the output_buffering=4096 buffer so flush() reaches the client.
while (ob_get_level()) { ob_end_flush(); }
echo 'first';
flush();
header('X-After-Flush: 1');
echo ' second sent=', var_export(headers_sent(), true);
flush();
echo ' third';
