"""Askr: an application server for PHP and Laravel.

One master process supervises N workers; each worker owns an io_uring (or
epoll) event loop and an embedded PHP interpreter.
"""

__version__ = "0.1.0"
