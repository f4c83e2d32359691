<?php
header('Location: /login', true, 303);
exit;
echo 'never';
