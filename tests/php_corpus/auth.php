<?php
$names = ['PHP_AUTH_USER', 'PHP_AUTH_PW', 'PHP_AUTH_DIGEST', 'AUTH_TYPE',
          'HTTP_AUTHORIZATION', 'REMOTE_USER'];
foreach ($names as $n) {
    echo $n, '=', var_export($_SERVER[$n] ?? null, true), "\n";
}
