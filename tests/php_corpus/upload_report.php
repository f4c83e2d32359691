<?php
// Stable facts about each upload: temp paths and times differ per run.
function report($key, $f) {
    if (is_array($f['error'])) {
        foreach ($f['error'] as $k => $_) {
            $sub = [];
            foreach ($f as $field => $values) { $sub[$field] = $values[$k]; }
            report("$key.$k", $sub);
        }
        return;
    }
    $tmp = $f['tmp_name'];
    echo $key, ': name=', var_export($f['name'], true),
        ' full_path=', var_export($f['full_path'] ?? null, true),
        ' type=', var_export($f['type'], true),
        ' size=', $f['size'], ' error=', $f['error'],
        ' uploaded=', var_export($tmp !== '' && is_uploaded_file($tmp), true),
        ' md5=', ($tmp !== '' && is_file($tmp)) ? md5_file($tmp) : '-', "\n";
}
echo 'count=', count($_FILES), "\n";
foreach ($_FILES as $key => $f) { report($key, $f); }
echo 'POST=', json_encode($_POST), "\n";
echo 'input=', strlen(file_get_contents('php://input')), "\n";
