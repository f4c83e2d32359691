<?php
foreach (['PATH_INFO', 'PHP_SELF', 'SCRIPT_NAME', 'DOCUMENT_URI', 'REQUEST_URI',
          'PATH_TRANSLATED', 'ORIG_PATH_INFO', 'ORIG_SCRIPT_NAME'] as $n) {
    echo $n, '=', var_export($_SERVER[$n] ?? null, true), "\n";
}
$self = $_SERVER['SCRIPT_NAME'] . $_SERVER['PATH_INFO'];
echo 'self-matches=', var_export($_SERVER['PHP_SELF'] === $self, true);
