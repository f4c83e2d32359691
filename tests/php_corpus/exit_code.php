<?php
echo 'status stays 200';
exit(3);
