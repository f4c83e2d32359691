<?php
echo 'file=', var_export(__FILE__ === $_SERVER['SCRIPT_FILENAME'], true),
    ' included=', count(get_included_files()),
    ' rel=', substr(__FILE__, strlen($_SERVER['DOCUMENT_ROOT']));
