<?php
header('Location: /target?a=1');
echo 'moving';
