<?php
set_time_limit(1);
$t = microtime(true);
while (true) { if (microtime(true) - $t > 10) { echo 'timer never fired'; break; } }
