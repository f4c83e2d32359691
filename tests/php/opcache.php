<?php
$s = opcache_get_status(false);
echo json_encode([
    'enabled' => $s['opcache_enabled'] ?? false,
    'hits' => $s['opcache_statistics']['hits'] ?? 0,
]);
