<?php

return [
    'driver' => 'bcrypt',

    // Low cost on purpose: the demo logs in during load tests, and cost 10
    // would make every login a ~50 ms CPU burn that hides server overhead.
    'bcrypt' => [
        'rounds' => env('BCRYPT_ROUNDS', 4),
    ],

    'argon' => [
        'memory' => 65536,
        'threads' => 1,
        'time' => 4,
    ],
];
