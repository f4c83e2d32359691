<?php
header('Content-Type: application/json');
echo json_encode([
    'uri' => $_SERVER['REQUEST_URI'],
    'script' => $_SERVER['SCRIPT_NAME'],
    'path_info' => $_SERVER['PATH_INFO'] ?? null,
    'self' => $_SERVER['PHP_SELF'],
    'query' => $_SERVER['QUERY_STRING'],
    'get' => $_GET,
    'method' => $_SERVER['REQUEST_METHOD'],
    'protocol' => $_SERVER['SERVER_PROTOCOL'],
    'https' => $_SERVER['HTTPS'] ?? null,
    'host' => $_SERVER['HTTP_HOST'] ?? null,
]);
