<?php
error_log('askr corpus error_log line');
echo 'logged';
