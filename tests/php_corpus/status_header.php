<?php
header('Status: 503 Service Unavailable');
header('Retry-After: 120');
echo 'down ', http_response_code();
