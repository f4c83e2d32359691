<?php

/*
 * Test stand-in for Askr's askr_should_stop(): true once the file named by
 * ASKR_STUB_STOP_FILE exists.  Prepend it (auto_prepend_file) to the queue
 * or scheduler script to exercise their "Askr asked us to stop" path under
 * php-cli.
 */

if (! function_exists('askr_should_stop')) {
    function askr_should_stop(): bool
    {
        $file = getenv('ASKR_STUB_STOP_FILE');

        return is_string($file) && $file !== '' && file_exists($file);
    }
}
