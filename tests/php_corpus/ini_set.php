<?php
// Changes an ini value; the next request must see the configured one again.
ini_set('precision', '5');
echo ini_get('precision'), ' ', 1/3;
