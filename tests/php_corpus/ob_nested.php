<?php
ob_start();
echo 'outer-';
ob_start();
echo 'inner';
$inner = ob_get_clean();
echo strtoupper($inner), ' level=', ob_get_level();
ob_end_flush();
echo ' done level=', ob_get_level();
