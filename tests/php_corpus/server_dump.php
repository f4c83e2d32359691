<?php
// Every $_SERVER entry in order; the request times vary, so only their types.
foreach ($_SERVER as $name => $value) {
    if ($name === 'REQUEST_TIME' || $name === 'REQUEST_TIME_FLOAT') {
        $value = gettype($value);
    }
    echo $name, '=', var_export($value, true), "\n";
}
