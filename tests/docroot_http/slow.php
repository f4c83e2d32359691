<?php
sleep((int)($_GET['s'] ?? 1));
echo 'slept';
