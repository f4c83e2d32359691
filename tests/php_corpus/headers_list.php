<?php
header('X-One: 1');
header_remove('X-Powered-By');
echo json_encode(['list' => headers_list(), 'sent' => headers_sent()]);
