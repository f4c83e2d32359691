<?php
// The request body as PHP received it: length and digest.
$body = file_get_contents('php://input');
header('Content-Type: text/plain');
echo strlen($body), ' ', md5($body), ' ', $_SERVER['CONTENT_LENGTH'] ?? '-';
