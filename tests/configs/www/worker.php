<?php
while (askr_handle_request(function () { echo "hi"; })) {}
