<?php

/*
 * Askr queue worker: runs Laravel's `queue:work` inside this process.
 *
 * Askr executes this file with its embedded PHP as a plain script (there is
 * no `php artisan` child process); it also runs under php-cli, which is how
 * the tests drive it.  The application is booted once, then queue:work
 * processes jobs until one of its limits is reached, and the script exits.
 * Askr respawns it, which gives a fresh process (and fresh memory) every
 * ASKR_QUEUE_MAX_JOBS jobs or ASKR_QUEUE_MAX_TIME seconds.
 *
 * Environment:
 *   ASKR_APP_BASE          application directory (default: ./laravel-app)
 *   ASKR_QUEUE_MAX_JOBS    jobs to process before exiting (default 500)
 *   ASKR_QUEUE_MAX_TIME    seconds to run before exiting (default 3600)
 *   ASKR_QUEUE_SLEEP       seconds to wait when the queue is empty (default 1)
 *   ASKR_QUEUE_CONNECTION  queue connection (default: the app's default)
 *   ASKR_QUEUE_NAMES       comma-separated queues (default: connection's)
 *
 * Stopping early: under php-cli with pcntl, queue:work handles SIGTERM
 * itself (finishes the current job, then returns).  Askr's embedded PHP has
 * no pcntl (signals belong to the Python process), so when Askr provides
 * askr_should_stop(), this script asks it on every turn of the worker loop
 * (Laravel's Looping event) and lets the worker quit after the current job.
 */

use Illuminate\Contracts\Console\Kernel as ConsoleKernel;
use Illuminate\Queue\Events\Looping;

function askr_env_value(string $name, string $default): string
{
    $value = $_SERVER[$name] ?? getenv($name);

    return is_string($value) && $value !== '' ? $value : $default;
}

$askrAppBase = askr_env_value('ASKR_APP_BASE', __DIR__.'/laravel-app');

require $askrAppBase.'/vendor/autoload.php';

/** @var \Illuminate\Foundation\Application $app */
$app = require $askrAppBase.'/bootstrap/app.php';

// A long-running script: PHP's max_execution_time (if the SAPI's ini
// sets one) must not cut it off; its own limits end it instead.
set_time_limit(0);

$kernel = $app->make(ConsoleKernel::class);
$kernel->bootstrap();

if (function_exists('askr_should_stop')) {
    $app['events']->listen(Looping::class, static function () use ($app) {
        if (askr_should_stop()) {
            $app['queue.worker']->shouldQuit = true;
        }
    });
}

$arguments = [
    '--max-jobs' => (int) askr_env_value('ASKR_QUEUE_MAX_JOBS', '500'),
    '--max-time' => (int) askr_env_value('ASKR_QUEUE_MAX_TIME', '3600'),
    '--sleep' => (int) askr_env_value('ASKR_QUEUE_SLEEP', '1'),
    '--stop-when-empty' => false,
];
$connection = askr_env_value('ASKR_QUEUE_CONNECTION', '');
if ($connection !== '') {
    $arguments['connection'] = $connection;
}
$queues = askr_env_value('ASKR_QUEUE_NAMES', '');
if ($queues !== '') {
    $arguments['--queue'] = $queues;
}

// queue:work writes one line per job ("Processing: ...", "Processed: ...");
// pass it straight to stdout, which Askr forwards to its log.
$output = new Symfony\Component\Console\Output\StreamOutput(fopen('php://stdout', 'w'));
$status = $kernel->call('queue:work', $arguments, $output);

$kernel->terminate(new Symfony\Component\Console\Input\ArrayInput([]), $status);

exit($status);
