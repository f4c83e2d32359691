<?php
// A "worker" that ends on its own during boot.
echo "boot-output";
exit();
