<?php

/*
 * Test stand-in for Askr's askr_handle_request(), for running worker
 * scripts under plain php-cli (no embedded SAPI needed).
 *
 * Load it before the worker script:
 *     php -d display_errors=stderr -d auto_prepend_file=askr_stub.php \
 *         examples/laravel-worker.php
 *
 * Protocol (line-oriented JSON, driven by the test):
 *   stdin:  one request per line:
 *           {"method": "GET", "uri": "/path?q=1",
 *            "headers": {"Cookie": "a=b", ...}, "form": {"k": "v"}}
 *           An empty line or EOF makes askr_handle_request() return false.
 *   stdout: one response per line:
 *           {"status": 200, "headers": [["Name", "value"], ...],
 *            "body": "...", "memory": <memory_get_usage() after the request>}
 *
 * What the stub does NOT emulate: php://input (the body is only available
 * as $_POST) and uploads ($_FILES, since is_uploaded_file() is false in
 * CLI); the php -S tests cover those.
 *
 * Capturing the response: header() does nothing under CLI, so the status
 * and headers are taken from the Symfony Response that Laravel's HTTP
 * kernel announces with its RequestHandled event; the stub subscribes to
 * it through the container, so the worker script needs no test hook.  The
 * body is what the handler printed (Response::send()).
 */

if (! function_exists('askr_handle_request')) {
    function askr_stub_read_request()
    {
        $line = fgets(STDIN);
        if ($line === false || trim($line) === '') {
            return null;
        }

        return json_decode($line, true, 32, JSON_THROW_ON_ERROR);
    }

    function askr_stub_set_globals(array $req): void
    {
        $method = strtoupper($req['method'] ?? 'GET');
        $uri = $req['uri'] ?? '/';
        $query = (string) parse_url($uri, PHP_URL_QUERY);
        $headers = $req['headers'] ?? [];
        $form = $req['form'] ?? null;

        $server = [
            'REQUEST_METHOD' => $method,
            'REQUEST_URI' => $uri,
            'QUERY_STRING' => $query,
            'SERVER_PROTOCOL' => 'HTTP/1.1',
            'SERVER_NAME' => '127.0.0.1',
            'SERVER_PORT' => '80',
            'SERVER_SOFTWARE' => 'askr-stub',
            'REMOTE_ADDR' => '127.0.0.1',
            'REMOTE_PORT' => '40000',
            'GATEWAY_INTERFACE' => 'CGI/1.1',
            'SCRIPT_NAME' => '/index.php',
            'SCRIPT_FILENAME' => getenv('ASKR_APP_BASE').'/public/index.php',
            'PHP_SELF' => '/index.php',
            'DOCUMENT_ROOT' => getenv('ASKR_APP_BASE').'/public',
            'REQUEST_TIME' => time(),
            'REQUEST_TIME_FLOAT' => microtime(true),
            'HTTP_HOST' => '127.0.0.1',
        ];
        foreach ($headers as $name => $value) {
            $key = strtoupper(str_replace('-', '_', $name));
            if ($key === 'CONTENT_TYPE' || $key === 'CONTENT_LENGTH') {
                $server[$key] = $value;
            } else {
                $server['HTTP_'.$key] = $value;
            }
        }

        $_GET = [];
        parse_str($query, $_GET);

        // Parse the Cookie header the way PHP's SAPI layer does: pairs split
        // on ';', values URL-decoded, the first occurrence of a name wins.
        $_COOKIE = [];
        foreach (explode(';', $server['HTTP_COOKIE'] ?? '') as $pair) {
            $pair = trim($pair);
            if ($pair === '' || strpos($pair, '=') === false) {
                continue;
            }
            [$name, $value] = explode('=', $pair, 2);
            if (! array_key_exists($name, $_COOKIE)) {
                $_COOKIE[$name] = urldecode($value);
            }
        }

        $_POST = [];
        if ($form !== null) {
            $_POST = $form;
            $server['CONTENT_TYPE'] = 'application/x-www-form-urlencoded';
            $server['CONTENT_LENGTH'] = (string) strlen(http_build_query($form));
        }

        $_FILES = [];
        $_REQUEST = array_merge($_GET, $_POST);
        $_SERVER = $server;
    }

    function askr_stub_response_line(?object $response, string $body): string
    {
        $status = 500;
        $headers = [];
        if ($response !== null) {
            $status = $response->getStatusCode();
            foreach ($response->headers->allPreserveCaseWithoutCookies() as $name => $values) {
                foreach ($values as $value) {
                    $headers[] = [$name, (string) $value];
                }
            }
            foreach ($response->headers->getCookies() as $cookie) {
                $headers[] = ['Set-Cookie', (string) $cookie];
            }
        }

        return json_encode(
            ['status' => $status, 'headers' => $headers, 'body' => $body,
             'memory' => memory_get_usage()],
            JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR
        )."\n";
    }

    function askr_handle_request(callable $handler): bool
    {
        static $captured = null;
        static $subscribed = false;

        $req = askr_stub_read_request();
        if ($req === null) {
            return false;
        }

        if (! $subscribed && class_exists(Illuminate\Container\Container::class, false)) {
            $events = Illuminate\Container\Container::getInstance()->make('events');
            $events->listen(
                Illuminate\Foundation\Http\Events\RequestHandled::class,
                static function ($event) use (&$captured) {
                    $captured = $event->response;
                }
            );
            $subscribed = true;
        }

        askr_stub_set_globals($req);
        $captured = null;

        ob_start();
        try {
            $handler();
        } finally {
            $body = ob_get_clean();
        }

        fwrite(STDOUT, askr_stub_response_line($captured, $body));
        fflush(STDOUT);

        return true;
    }
}
