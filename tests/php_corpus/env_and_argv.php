<?php
echo 'ENV=', var_export($_ENV, true), "\n";
echo 'argv=', isset($_SERVER['argv']) ? 'set' : 'unset', "\n";
echo 'argc=', isset($_SERVER['argc']) ? 'set' : 'unset', "\n";
echo 'HTTP_RAW_POST_DATA=', isset($HTTP_RAW_POST_DATA) ? 'set' : 'unset', "\n";
