<?php
header('Content-Type: text/plain');
readfile(__DIR__ . '/lib/data.txt');
