<?php
header('Content-Type: text/plain');
echo "plain\n";
