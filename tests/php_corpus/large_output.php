<?php
$block = str_repeat('0123456789abcdef', 4096);  // 64 KiB
for ($i = 0; $i < 48; $i++) {
    echo $block;  // 3 MiB in total
}
