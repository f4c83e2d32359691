<?php

/*
 * Askr scheduler: runs Laravel's `schedule:run` inside this process at the
 * start of every minute, the job cron would do with
 * `* * * * * php artisan schedule:run`, without forking PHP each minute.
 *
 * Askr executes this file with its embedded PHP as a long-running script;
 * it also runs under php-cli (tests, or by hand).  The application is
 * booted once.  The loop sleeps until the next interval boundary of the
 * wall clock (hh:mm:00 for the default 60 s), runs schedule:run, and goes
 * back to sleep.  Runs never overlap: a run that outlasts the interval
 * makes the loop skip the boundaries it missed (logged) and wait for the
 * next one, as cron with a lock would.
 *
 * Environment:
 *   ASKR_APP_BASE             application directory (default ./laravel-app)
 *   ASKR_SCHEDULER_INTERVAL   seconds between runs (default 60; tests use 2)
 *
 * Stopping: when Askr provides askr_should_stop(), it is polled while
 * sleeping; otherwise (php-cli) SIGTERM and SIGINT set a flag through
 * pcntl.  Either way the script returns between runs, never inside one.
 *
 * Limits: tasks defined with $schedule->call() or ->job() run in this
 * process.  Tasks defined with ->command() or ->exec() are started by
 * Laravel as `PHP_BINARY artisan ...` child processes, which needs a PHP
 * CLI binary on the host.
 */

use Illuminate\Console\Scheduling\ScheduleRunCommand;
use Illuminate\Contracts\Console\Kernel as ConsoleKernel;

function askr_scheduler_env(string $name, string $default): string
{
    $value = $_SERVER[$name] ?? getenv($name);

    return is_string($value) && $value !== '' ? $value : $default;
}

$askrAppBase = askr_scheduler_env('ASKR_APP_BASE', __DIR__.'/laravel-app');
$interval = max(1, (int) askr_scheduler_env('ASKR_SCHEDULER_INTERVAL', '60'));

require $askrAppBase.'/vendor/autoload.php';

/** @var \Illuminate\Foundation\Application $app */
$app = require $askrAppBase.'/bootstrap/app.php';

// A long-running script: PHP's max_execution_time (if the SAPI's ini
// sets one) must not cut it off; its own limits end it instead.
set_time_limit(0);

$kernel = $app->make(ConsoleKernel::class);
$kernel->bootstrap();

$stopRequested = false;
if (! function_exists('askr_should_stop') && function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    $onSignal = static function () use (&$stopRequested): void {
        $stopRequested = true;
    };
    pcntl_signal(SIGTERM, $onSignal);
    pcntl_signal(SIGINT, $onSignal);
}

$shouldStop = static function () use (&$stopRequested): bool {
    if (function_exists('askr_should_stop') && askr_should_stop()) {
        return true;
    }

    return $stopRequested;
};

/** The first boundary (a multiple of $interval since the epoch) after $now. */
$nextBoundary = static function (float $now) use ($interval): int {
    return ((int) floor($now / $interval) + 1) * $interval;
};

$output = new Symfony\Component\Console\Output\StreamOutput(fopen('php://stdout', 'w'));
$due = $nextBoundary(microtime(true));

fwrite(STDOUT, sprintf(
    "askr-scheduler: started, interval %ds, first run at %s\n",
    $interval, date('H:i:s', $due)
));

while (! $shouldStop()) {
    // Sleep in short slices so a stop request is seen within 0.2 s.
    $left = $due - microtime(true);
    if ($left > 0) {
        usleep((int) (min($left, 0.2) * 1e6));
        continue;
    }

    try {
        // A fresh command object for every run: ScheduleRunCommand records
        // its start time in its constructor (the minute that onOneServer()
        // locks are keyed on) and keeps an "events ran" flag, and Artisan
        // would otherwise reuse the first instance for the process's life.
        if (method_exists($kernel, 'registerCommand')) {
            $kernel->registerCommand($app->build(ScheduleRunCommand::class));
        }
        $kernel->call('schedule:run', [], $output);
    } catch (Throwable $e) {
        // One failing run must not end the scheduler: report, go on.
        $app->make(Illuminate\Contracts\Debug\ExceptionHandler::class)->report($e);
        fwrite(STDERR, 'askr-scheduler: schedule:run failed: '.$e->getMessage()."\n");
    }

    $next = $nextBoundary(microtime(true));
    $missed = intdiv($next - $due, $interval) - 1;
    if ($missed > 0) {
        fwrite(STDERR, sprintf(
            "askr-scheduler: run took longer than %ds, skipped %d boundary(ies)\n",
            $interval, $missed
        ));
    }
    $due = $next;
}

fwrite(STDOUT, "askr-scheduler: stopping\n");
$kernel->terminate(new Symfony\Component\Console\Input\ArrayInput([]), 0);
