<?php
foreach (['REQUEST_METHOD', 'SCRIPT_NAME', 'HTTP_X_CUSTOM', 'QUERY_STRING', 'NOT_THERE'] as $n) {
    echo $n, '=', var_export(getenv($n), true), "\n";
}
