<?php
class Noisy { public function __destruct() { echo ' destructed'; } }
$keep = new Noisy();
echo 'alive';
