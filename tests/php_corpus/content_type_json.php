<?php
header('Content-Type: application/json');
echo json_encode(['a' => [1, 2], 'u' => "\u{e9}"]);
