<?php
http_response_code((int)$_GET['code']);
echo 'this body must not be sent';
