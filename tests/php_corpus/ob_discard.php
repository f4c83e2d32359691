<?php
ob_start();
echo 'secret';
header('X-Kept: yes');
ob_end_clean();
echo 'public';
