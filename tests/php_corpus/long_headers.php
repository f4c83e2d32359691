<?php
// One large header value and many headers: no fixed-size buffer may cut them.
header('X-Long: ' . str_repeat('abcdefgh', 1024));
for ($i = 0; $i < 100; $i++) {
    header("X-Many-$i: $i");
}
echo 'many';
