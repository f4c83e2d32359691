<?php
$f = $_FILES['doc'];
$dest = sys_get_temp_dir() . '/askr-corpus-' . getmypid() . '-'
    . bin2hex(random_bytes(4));
$ok = move_uploaded_file($f['tmp_name'], $dest);
echo 'moved=', var_export($ok, true), ' md5=', $ok ? md5_file($dest) : '-',
    ' still_there=', var_export(file_exists($f['tmp_name']), true);
@unlink($dest);
$bad = move_uploaded_file(__FILE__, $dest);
echo ' foreign=', var_export($bad, true);
