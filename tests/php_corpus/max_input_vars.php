<?php
echo count($_GET), ' ', count($_POST),
    ' last=', var_export(array_key_last($_GET), true);
