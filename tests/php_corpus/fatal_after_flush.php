<?php
// Drop the output_buffering=4096 buffer so flush() reaches the client.
while (ob_get_level()) { ob_end_flush(); }
echo 'flushed ';
flush();
askr_corpus_no_such_function();
