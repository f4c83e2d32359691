<?php
// A long-running script that polls askr_should_stop().
for ($i = 0; $i < 200 && !askr_should_stop(); $i++) {
    if ($i === 3) {
        posix_kill(getmypid(), SIGTERM);
    }
    usleep(10000);
}
echo "stopped after $i";
