<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use Illuminate\Support\Facades\DB;

/*
 * Queued by GET /dispatch; the queue worker runs it and leaves a row in
 * job_marks, which is how tests see that the job went through the queue.
 */
class WriteJobMark implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;

    public string $note;

    public function __construct(string $note)
    {
        $this->note = $note;
    }

    public function handle(): void
    {
        DB::table('job_marks')->insert([
            'note' => $this->note,
            'handled_at' => now()->format('Y-m-d H:i:s.u'),
            'pid' => getmypid(),
        ]);
    }
}
