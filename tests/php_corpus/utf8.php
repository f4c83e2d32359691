<?php
$q = $_GET['q'] ?? '';
$info = $_SERVER['PATH_INFO'];
echo $q, ' ', strlen($q), ' ', $info, ' ', strlen($info);
