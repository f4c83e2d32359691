<?php
echo "POST:\n", var_export($_POST, true), "\n";
echo "REQUEST:\n", var_export($_REQUEST, true), "\n";
