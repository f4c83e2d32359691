<?php
// "true true" only in the opcache ini variant; both sides must agree.
$status = function_exists('opcache_get_status') ? @opcache_get_status(false) : false;
echo var_export(extension_loaded('Zend OPcache'), true), ' ',
    var_export(is_array($status), true);
