<?php
ob_start(function ($buf) { return str_replace('world', 'WORLD', $buf); });
echo 'hello world';
