<?php
// "true" only in the opcache ini variant; both sides must agree.
echo var_export(extension_loaded('Zend OPcache'), true), ' ',
    var_export(function_exists('opcache_get_status') && is_array(@opcache_get_status(false)), true);
