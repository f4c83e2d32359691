<?php

use Illuminate\Support\Str;

return [
    'driver' => env('SESSION_DRIVER', 'file'),
    'lifetime' => 120,
    'expire_on_close' => false,
    'encrypt' => false,
    'files' => storage_path('framework/sessions'),
    'connection' => null,
    'table' => 'sessions',
    'store' => null,
    // Garbage collection off: a 2% lottery in a long-lived worker would make
    // latency spiky; expired files are cleaned by the setup script instead.
    'lottery' => [0, 100],
    'cookie' => env('SESSION_COOKIE', Str::slug(env('APP_NAME', 'askr'), '_').'_session'),
    'path' => '/',
    'domain' => env('SESSION_DOMAIN', null),
    'secure' => env('SESSION_SECURE_COOKIE'),
    'http_only' => true,
    'same_site' => 'lax',
];
