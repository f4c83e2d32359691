<?php
// A script may set its own Content-Length; both sides must pass it on as is.
header('Content-Length: 3');
echo 'abc';
