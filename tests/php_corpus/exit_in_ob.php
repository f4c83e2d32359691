<?php
ob_start();
echo 'buffered text flushed at exit';
exit;
