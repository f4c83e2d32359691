<?php

/*
 * Autoloader for the Askr demo app, standing in for Composer's.
 *
 * The framework comes from Debian's php-laravel-framework package, whose
 * autoloader pulls in the autoloaders of every php-* dependency (symfony,
 * monolog, carbon, ...).  The app's own classes follow PSR-4: App\ lives in
 * app/, Database\Seeders\ in database/seeders/.
 */

require_once '/usr/share/php/Illuminate/autoload.php';

spl_autoload_register(static function (string $class): void {
    static $prefixes = null;

    if ($prefixes === null) {
        $base = dirname(__DIR__);
        $prefixes = [
            'App\\' => $base.'/app/',
            'Database\\Seeders\\' => $base.'/database/seeders/',
            'Database\\Factories\\' => $base.'/database/factories/',
        ];
    }

    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            continue;
        }

        $file = $dir.str_replace('\\', '/', substr($class, strlen($prefix))).'.php';
        if (is_file($file)) {
            require $file;
        }

        return;
    }
});
