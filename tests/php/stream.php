<?php
$mode = $_GET['mode'] ?? '';
if ($mode === 'flush') {
    echo "first";
    flush();
    echo "second";
} elseif ($mode === 'big') {
    for ($i = 0; $i < 200; $i++) {
        echo str_repeat('x', 1000);
    }
} elseif ($mode === 'finish') {
    echo "answered";
    fastcgi_finish_request();
    echo "lost";
    file_put_contents($_GET['marker'], 'ran-after-finish');
} elseif ($mode === 'abort') {
    ignore_user_abort(($_GET['ignore'] ?? '') === '1');
    for ($i = 0; $i < 5; $i++) {
        echo "chunk$i";
        flush();
    }
    file_put_contents($_GET['marker'], 'aborted=' . connection_aborted());
}
