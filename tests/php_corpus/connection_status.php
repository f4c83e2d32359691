<?php
echo connection_status(), ' ', connection_aborted(), ' ', ignore_user_abort();
