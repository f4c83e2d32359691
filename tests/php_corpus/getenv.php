<?php
$names = ['REQUEST_METHOD', 'SCRIPT_NAME', 'HTTP_X_CUSTOM', 'QUERY_STRING',
          'NOT_THERE'];
foreach ($names as $n) {
    echo $n, '=', var_export(getenv($n), true), "\n";
}
