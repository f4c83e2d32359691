<?php
// Long-lived worker script for tests/test_bridge_worker_mode.py.
// Boot-time state the app keeps on purpose: a static counter, an error
// handler, and one ini change.
ini_set('precision', '10');
set_error_handler(function () { return false; });
$booted = bin2hex(random_bytes(4));
$served = 0;
echo "booted";

function probe(): array
{
    $prev = set_error_handler(function () { return false; });
    restore_error_handler();
    $prevEx = set_exception_handler(null);
    set_exception_handler($prevEx);
    return [
        'get' => $_GET,
        'post' => $_POST,
        'cookie' => $_COOKIE,
        'files' => array_map(fn ($f) => $f['tmp_name'], $_FILES),
        'request' => $_REQUEST,
        'token_header' => $_SERVER['HTTP_X_TOKEN'] ?? null,
        'server_token_keys' => array_values(array_filter(
            array_keys($_SERVER),
            fn ($k) => str_starts_with($k, 'HTTP_X_SET')
        )),
        'input' => file_get_contents('php://input'),
        'session_status' => session_status(),
        'session_id' => session_id(),
        'session_var' => isset($_SESSION),
        'precision' => ini_get('precision'),
        'serialize_precision' => ini_get('serialize_precision'),
        'env' => getenv('ASKR_TEST_PUTENV'),
        'error_handler_is_boot' => $prev instanceof Closure,
        'exception_handler' => $prevEx !== null,
        'ob_level' => ob_get_level(),
        'headers' => headers_list(),
        'status' => http_response_code(),
        'last_error' => error_get_last(),
    ];
}

$handler = function () use (&$served, $booted) {
    $served++;
    $action = $_GET['action'] ?? 'probe';
    $token = $_GET['token'] ?? '';
    $before = probe();
    switch ($action) {
        case 'dirty':
            // change everything a request may change
            header('X-Set-' . $token . ': 1');
            header('Set-Cookie: k=' . $token, false);
            http_response_code(207);
            ini_set('serialize_precision', '5');
            putenv('ASKR_TEST_PUTENV=' . $token);
            set_error_handler(function () { return true; });
            set_exception_handler(function () {});
            session_id('s' . $token);
            session_start();
            $_SESSION['token'] = $token;
            @trigger_error('err-' . $token, E_USER_NOTICE);
            register_shutdown_function(function () use ($token) {
                echo "SHUTDOWN:$token";
            });
            ob_start();
            ob_start();
            echo json_encode(
                ['before' => $before, 'served' => $served, 'booted' => $booted]
            );
            return;
        case 'fatal':
            echo "partial";
            trigger_error('handler-fatal', E_USER_ERROR);
            return;
        case 'exception':
            echo "partial";
            throw new RuntimeException('handler-exception');
        case 'memory':
            ini_set('memory_limit', '16M');
            $a = str_repeat('x', 64 * 1024 * 1024);
            return;
        case 'exit':
            http_response_code(203);
            header('X-Exit: yes');
            ob_start();
            echo "exit-body";
            exit();
        case 'upload':
            foreach ($_FILES as $f) {
                echo "TMP:", $f['tmp_name'], "\n";
                echo "CONTENT:", file_get_contents($f['tmp_name']), "\n";
                $ok = is_uploaded_file($f['tmp_name']);
                echo "UPLOADED:", $ok ? 'yes' : 'no', "\n";
            }
            echo json_encode(
                ['before' => $before, 'served' => $served, 'booted' => $booted]
            );
            return;
        case 'abort':
            for ($i = 0; $i < 5; $i++) {
                echo "chunk$i";
                flush();
            }
            file_put_contents($_GET['marker'], 'aborted=' . connection_aborted());
            return;
        case 'sleep':
            sleep(5);
            return;
        default:
            echo json_encode(
                ['before' => $before, 'served' => $served, 'booted' => $booted]
            );
    }
};

while (askr_handle_request($handler)) {
    // nothing between requests
}
echo "after-loop";
