<?php
var_export($_GET);
echo "\n", $_SERVER['QUERY_STRING'];
