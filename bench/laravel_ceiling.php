<?php

/*
 * The demo Laravel app's own cost per request, with no server at all.
 *
 *     php -d opcache.enable_cli=1 bench/laravel_ceiling.php [/path] [N]
 *
 * Runs examples/laravel-worker.php (the script Askr's worker mode runs)
 * with askr_handle_request() defined here instead of by Askr: each call
 * fills $_SERVER for a GET of the path, runs the handler (capture,
 * handle, send, terminate, reset) into a discarded output buffer, and
 * after N timed requests (and 200 untimed ones) prints the mean wall
 * time per request.  No sockets, no Python: this bounds what any worker
 * mode server can reach on this machine (one request per core at a time).
 */

$askrPath = $argv[1] ?? '/text';
$askrTimed = (int) ($argv[2] ?? 2000);
$askrWarm = 200;
$askrLeft = $askrTimed + $askrWarm;
$askrStart = 0;
$askrServer = $_SERVER;

function askr_handle_request(callable $handler): bool
{
    global $askrPath, $askrTimed, $askrLeft, $askrStart, $askrServer;

    if ($askrLeft === $askrTimed) {
        $askrStart = hrtime(true);
    }
    if ($askrLeft-- === 0) {
        $us = (hrtime(true) - $askrStart) / 1e3 / $askrTimed;
        fprintf(STDERR, "%s: %.1f us per request (mean of %d, PHP only)\n",
            $askrPath, $us, $askrTimed);

        return false;
    }

    $_SERVER = [
        'REQUEST_METHOD' => 'GET',
        'REQUEST_URI' => $askrPath,
        'QUERY_STRING' => '',
        'SCRIPT_NAME' => '/index.php',
        'SCRIPT_FILENAME' => dirname(__DIR__).'/examples/laravel-app/public/index.php',
        'SERVER_PROTOCOL' => 'HTTP/1.1',
        'SERVER_NAME' => '127.0.0.1',
        'SERVER_PORT' => '80',
        'HTTP_HOST' => '127.0.0.1',
        'REMOTE_ADDR' => '127.0.0.1',
    ] + $askrServer;
    $_GET = $_POST = $_COOKIE = $_FILES = $_REQUEST = [];

    ob_start(static fn (): string => '');
    $handler();
    ob_end_clean();

    return true;
}

$_SERVER['ASKR_APP_BASE'] = dirname(__DIR__).'/examples/laravel-app';
require dirname(__DIR__).'/examples/laravel-worker.php';
