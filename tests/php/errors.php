<?php
$what = $_GET['what'] ?? '';
if ($what === 'exit') {
    http_response_code(202);
}
echo "before;";
switch ($what) {
    case 'exception':
        throw new RuntimeException('boom-exception');
    case 'user_error':
        trigger_error('boom-user-error', E_USER_ERROR);
        break;
    case 'undefined':
        askr_no_such_function();
        break;
    case 'warning':
        trigger_error('just-a-warning', E_USER_WARNING);
        echo "after-warning";
        break;
    case 'exit':
        ob_start();
        echo "buffered;";
        exit('bye');
    case 'memory':
        ini_set('memory_limit', '8M');
        $a = str_repeat('x', 32 * 1024 * 1024);
        break;
    case 'cpu':
        set_time_limit(1);
        while (true) {
        }
    case 'sleep':
        sleep(5);
        echo "woke";
        break;
    case 'stderr':
        fwrite(STDERR, "line-to-stderr\n");
        fwrite(STDOUT, "line-to-stdout\n");
        file_put_contents('php://stderr', "wrapper-stderr");
        echo "visible";
        break;
}
echo "end";
