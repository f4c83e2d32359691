<?php
echo 'x';
askr_corpus_no_such_function();
