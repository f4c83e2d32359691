<?php
ob_start();
echo 'buffered first';
http_response_code(409);
header('X-After-Output: ok');
ob_end_flush();
