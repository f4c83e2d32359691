<?php
ini_set('memory_limit', '16M');
$hog = [];
while (true) { $hog[] = str_repeat('m', 1 << 20); }
