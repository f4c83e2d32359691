<?php
header("X-Bad: a\r\nX-Evil: b");
header("X-Good: fine");
echo 'after';
