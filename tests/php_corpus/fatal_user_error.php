<?php
trigger_error('askr corpus user error', E_USER_ERROR);
echo 'not reached';
