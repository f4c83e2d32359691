<?php
$out = fopen('php://output', 'wb');
fwrite($out, "via stream\n");
fclose($out);
print "via print\n";
printf("via %s\n", 'printf');
file_put_contents('php://output', "via file_put_contents\n");
