<?php
// A Location on a 201 must not turn it into a redirect.
http_response_code(201);
header('Location: /items/7');
echo 'created';
