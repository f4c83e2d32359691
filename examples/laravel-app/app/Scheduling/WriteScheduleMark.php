<?php

namespace App\Scheduling;

use Illuminate\Support\Facades\DB;

class WriteScheduleMark
{
    public function __invoke(): void
    {
        DB::table('schedule_marks')->insert([
            'ran_at' => now()->format('Y-m-d H:i:s.u'),
            'pid' => getmypid(),
        ]);
    }
}
