<?php
session_id('askrfixedsessionid0123456789');
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo 'n=', $_SESSION['n'], ' id=', session_id();
session_write_close();
// Leave nothing behind for the other side of the comparison.
@unlink(session_save_path() . '/sess_' . session_id());
