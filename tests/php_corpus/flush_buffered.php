<?php
// output_buffering=4096 still holds the text: flush() alone sends nothing.
echo 'first';
flush();
header('X-After-Flush: 1');
echo ' second sent=', var_export(headers_sent(), true);
flush();
echo ' third';
