<?php
echo 'small';
header('X-Late: 1');
echo ' sent=', var_export(headers_sent(), true);
