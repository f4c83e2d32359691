"""Askr's per-core event loop: io_uring (via a cffi shim) or epoll.

``open_backend`` picks the backend once per worker process (after fork:
a ring must not be shared between processes) and logs the choice and its
reason once.  Both backends implement the interface in docs/DESIGN.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .base import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR, EV_NAMES, EV_SENT

__all__ = [
    "EV_ACCEPT",
    "EV_DATA",
    "EV_EOF",
    "EV_ERROR",
    "EV_NAMES",
    "EV_SENT",
    "open_backend",
]

logger = logging.getLogger("askr.uring")


def open_backend(
    io: str = "auto", log: Callable[..., None] | None = None, **options: object
):
    """Open the loop backend for this process.

    io: "uring" (fail if io_uring is unusable), "epoll", or "auto" (io_uring
    when the probe says it is usable, else epoll).  log: a callable taking
    (level, message) for the one start-up line; defaults to the
    "askr.uring" logger.  options go to the backend (buffer sizes, ...).
    """
    if io not in ("auto", "uring", "epoll"):
        raise ValueError(f"io must be auto, uring or epoll, not {io!r}")

    def say(level: int, message: str) -> None:
        if log is not None:
            log(level, message)
        else:
            logger.log(level, "%s", message)

    if io == "epoll":
        return _epoll("io=epoll requested", say, options)

    from .probe import probe

    facts = probe()
    if not facts["usable"]:
        if io == "uring":
            raise OSError(facts["setup_errno"] or 0, facts["reason"])
        return _epoll(
            "io_uring unusable: " + facts["reason"], say, options, level=logging.WARNING
        )

    from .ring import UringBackend

    try:
        be = UringBackend(reason="", **options)  # type: ignore[arg-type]
    except OSError as exc:
        if io == "uring":
            raise
        return _epoll(
            f"io_uring set-up failed: {exc}", say, options, level=logging.WARNING
        )
    be.reason = "io={}: io_uring usable, flags {}".format(
        io, ",".join(be.flags) or "none"
    )
    say(logging.INFO, f"askr.uring: backend uring ({be.reason})")
    return be


def _epoll(
    reason: str,
    say: Callable[[int, str], None],
    options: dict,
    level: int = logging.INFO,
):
    from .epoll import EpollBackend

    allowed = {k: v for k, v in options.items() if k in ("bufsize", "max_events")}
    be = EpollBackend(reason=reason, **allowed)  # type: ignore[arg-type]
    say(level, f"askr.uring: backend epoll ({reason})")
    return be
