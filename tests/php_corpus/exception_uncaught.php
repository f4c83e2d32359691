<?php
throw new RuntimeException('askr corpus boom');
