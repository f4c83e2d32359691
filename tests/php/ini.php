<?php
echo json_encode([
    'mbstring' => extension_loaded('mbstring'),
    'opcache' => extension_loaded('Zend OPcache'),
    'memory_limit' => ini_get('memory_limit'),
    'loaded_file' => php_ini_loaded_file(),
]);
