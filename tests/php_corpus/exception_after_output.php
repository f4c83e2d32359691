<?php
echo 'partial output ';
throw new LogicException('askr corpus late boom');
