<?php
// Everything a request can see, as JSON.
$files = [];
foreach ($_FILES as $name => $f) {
    if (is_array($f['tmp_name'])) {
        $files[$name] = $f;
        continue;
    }
    $f['content'] = $f['error'] === 0 ? file_get_contents($f['tmp_name']) : null;
    $f['is_uploaded'] = is_uploaded_file($f['tmp_name']);
    echo "TMP:", $f['tmp_name'], "\n";
    $files[$name] = $f;
}
echo json_encode([
    'server' => $_SERVER,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'files' => $files,
    'request' => $_REQUEST,
    'input' => file_get_contents('php://input'),
    'sapi' => php_sapi_name(),
    'const' => PHP_SAPI,
    'getenv' => getenv('HTTP_X_TOKEN'),
]);
