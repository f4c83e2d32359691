<?php
// request_order=GP: POST overrides GET, cookies are not part of $_REQUEST.
var_export($_REQUEST);
echo "\n", $_REQUEST['k'] ?? 'none', ' ';
echo isset($_REQUEST['c']) ? 'cookie-in' : 'cookie-out';
