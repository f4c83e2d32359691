<?php
header('Content-Type:');
echo 'no type?';
