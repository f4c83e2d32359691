<?php

namespace App\Scheduling;

use Illuminate\Support\Facades\DB;

/*
 * The demo's scheduled task: records that it ran.  DEMO_SCHEDULE_TASK_SECONDS
 * (environment, default 0) makes it take that long after writing its mark,
 * so tests can show that a run longer than the interval is not overlapped.
 */
class WriteScheduleMark
{
    public function __invoke(): void
    {
        DB::table('schedule_marks')->insert([
            'ran_at' => now()->format('Y-m-d H:i:s.u'),
            'pid' => getmypid(),
        ]);

        $seconds = (float) getenv('DEMO_SCHEDULE_TASK_SECONDS');
        if ($seconds > 0) {
            usleep((int) ($seconds * 1e6));
        }
    }
}
