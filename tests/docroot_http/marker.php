<?php
// Leaves a trace when it runs: a smuggled request must never get here.
file_put_contents(__DIR__ . '/../marker-ran-' . getmypid(), 'ran');
echo 'marker';
