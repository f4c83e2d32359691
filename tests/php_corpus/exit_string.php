<?php
echo 'before ';
exit('done');
