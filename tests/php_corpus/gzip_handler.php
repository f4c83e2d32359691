<?php
// ob_gzhandler picks its encoding from HTTP_ACCEPT_ENCODING and adds headers.
ob_start('ob_gzhandler');
echo str_repeat("compressible text\n", 200);
