<?php
// Classic mode: nothing survives a request, so this prints 1 every time.
function bump() { static $n = 0; return ++$n; }
$GLOBALS['askr_counter'] = ($GLOBALS['askr_counter'] ?? 0) + 1;
if (!defined('ASKR_ONCE')) { define('ASKR_ONCE', 1); }
class AskrCorpusOnce {}
echo bump(), ' ', $GLOBALS['askr_counter'], ' ', ini_get('precision');
