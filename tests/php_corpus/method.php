<?php
echo $_SERVER['REQUEST_METHOD'], ' post=', count($_POST),
    ' input=', strlen(file_get_contents('php://input'));
