<?php
$a = [];
echo $a['missing'] ?? 'default', ' ';
echo $undefined_askr_var;
echo 'still 200';
