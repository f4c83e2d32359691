<?php
http_response_code(299);
echo http_response_code();
