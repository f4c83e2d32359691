<?php
echo $_GET['q'] ?? '', ' ', strlen($_GET['q'] ?? ''), ' ', $_SERVER['PATH_INFO'], ' ', strlen($_SERVER['PATH_INFO']);
