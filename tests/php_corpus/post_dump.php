<?php
echo "POST:\n", var_export($_POST, true), "\nREQUEST:\n", var_export($_REQUEST, true), "\n";
