<?php

/*
 * Front controller for classic (one process per request) mode: php-fpm,
 * php -S, or Askr's classic mode.  Worker mode uses
 * examples/laravel-worker.php instead.
 */

use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

define('LARAVEL_START', microtime(true));

require __DIR__.'/../vendor/autoload.php';

$app = require_once __DIR__.'/../bootstrap/app.php';

$kernel = $app->make(Kernel::class);

$response = $kernel->handle(
    $request = Request::capture()
)->send();

$kernel->terminate($request, $response);
