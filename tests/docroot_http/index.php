<?php
echo 'front controller: ', $_SERVER['REQUEST_URI'], ' script=', $_SERVER['SCRIPT_NAME'];
