<?php
$f = $_SERVER['REQUEST_TIME_FLOAT'];
$i = $_SERVER['REQUEST_TIME'];
echo 'float=', var_export(is_float($f), true), ' int=', var_export(is_int($i), true),
    ' consistent=', var_export($i === (int) $f, true),
    ' recent=', var_export(abs(microtime(true) - $f) < 30, true),
    ' last=', implode(',', array_slice(array_keys($_SERVER), -3));
