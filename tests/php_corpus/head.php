<?php
header('X-Head: yes');
echo "this body must not matter for HEAD\n";
