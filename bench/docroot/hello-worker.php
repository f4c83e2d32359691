<?php
// Worker-mode counterpart of hello.php: the same answer, no boot work.
while (askr_handle_request(function () {
    echo "Hello, world!\n";
})) {
}
