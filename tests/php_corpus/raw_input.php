<?php
$a = file_get_contents('php://input');
$b = file_get_contents('php://input');
echo strlen($a), ' ', md5($a), ' ', $a === $b ? 'same' : 'differs', "\n";
echo 'POST=', var_export($_POST, true), "\n";
echo 'CT=', $_SERVER['CONTENT_TYPE'], ' CL=', $_SERVER['CONTENT_LENGTH'], "\n";
