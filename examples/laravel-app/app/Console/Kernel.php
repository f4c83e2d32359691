<?php

namespace App\Console;

use App\Scheduling\WriteScheduleMark;
use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

class Kernel extends ConsoleKernel
{
    protected $commands = [];

    /*
     * One task, due every minute: it leaves a row in schedule_marks so a
     * test (or an operator) can see that the scheduler ran.  An invokable
     * class rather than a closure keeps the schedule cache-friendly.
     */
    protected function schedule(Schedule $schedule)
    {
        $schedule->call(new WriteScheduleMark)
            ->everyMinute()
            ->name('schedule-mark');
    }

    protected function commands()
    {
        // No custom Artisan commands: the demo only uses built-in ones.
    }
}
