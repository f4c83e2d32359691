<?php
setcookie('a', '1');
setcookie('b', '2');
header('X-Multi: one');
header('X-Multi: two', false);
echo 'ok';
