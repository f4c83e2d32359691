<?php
include 'lib/helper.inc';
echo askr_corpus_helper(),
    ' cwd-is-script-dir=', var_export(getcwd() === __DIR__, true);
