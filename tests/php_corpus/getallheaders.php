<?php
// php-cgi and php-fpm both provide getallheaders(); apps feature-test it.
echo 'exists=', var_export(function_exists('getallheaders'), true), "\n";
if (function_exists('getallheaders')) {
    var_export(getallheaders());
}
