<?php
header('X-Multi: one');
header('X-Multi: two', false);
header('X-Multi: three', false);
header('X-Replaced: old');
header('X-Replaced: new');
header('X-Removed: gone');
header_remove('X-Removed');
header('Link: </a.css>; rel=preload', false);
header('Link: </b.js>; rel=preload', false);
header('x-lower-case: kept as written');
echo 'ok';
