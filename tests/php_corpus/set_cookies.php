<?php
setcookie('plain', 'value');
setcookie('spaced', 'a b;c');
setrawcookie('raw', 'a%20b');
setcookie('full', 'v', ['expires' => 1, 'path' => '/p', 'domain' => 'example.test',
                        'secure' => true, 'httponly' => true, 'samesite' => 'Lax']);
setcookie('deleted', '', 1);
header('Set-Cookie: manual=1; Path=/', false);
echo 'cookies';
