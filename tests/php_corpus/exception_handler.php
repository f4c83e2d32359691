<?php
set_exception_handler(function (Throwable $e) {
    echo 'handled: ', get_class($e), ' ', $e->getMessage();
});
throw new DomainException('askr corpus handled');
