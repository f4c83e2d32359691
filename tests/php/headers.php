<?php
$mode = $_GET['mode'] ?? '';
header('X-One: 1');
header('Set-Cookie: a=1', false);
header('Set-Cookie: b=2', false);
setcookie('c', '3');
header('X-Gone: yes');
header_remove('X-Gone');
if ($mode === 'status') {
    http_response_code(418);
} elseif ($mode === 'line') {
    header('HTTP/1.1 404 Not Found');
} elseif ($mode === 'location') {
    header('Location: /elsewhere');
}
echo headers_sent() ? 'sent' : 'not-sent';
echo ',';
echo headers_sent() ? 'sent' : 'not-sent';
