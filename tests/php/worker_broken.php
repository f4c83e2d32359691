<?php
// A worker whose boot fails with a fatal error.
echo "starting";
askr_no_such_boot_function();
