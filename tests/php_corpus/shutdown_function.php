<?php
register_shutdown_function(function () { echo ' shutdown-ran'; });
echo 'body';
exit(' exit-message');
