"""What the event-loop tests share: whether io_uring can be used here,
and the backends to parametrize over (io_uring skipped where unusable)."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def uring_usable() -> bool:
    try:
        from askr.uring.probe import probe

        return probe()["usable"]
    except (ImportError, OSError):
        return False


BACKENDS = [
    pytest.param(
        "uring",
        marks=pytest.mark.skipif(not uring_usable(), reason="io_uring unusable here"),
    ),
    "epoll",
]
