<?php
header('Location: https://example.test/new', true, 301);
