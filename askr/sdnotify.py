"""systemd readiness notification (sd_notify) without libsystemd.

When systemd starts a ``Type=notify`` service it sets NOTIFY_SOCKET to a
unix datagram socket (a leading "@" means the abstract namespace).  Each
datagram is newline-separated ``KEY=value`` lines.  Without the variable
every call is a no-op, so callers need not check.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


def notify(*lines: str) -> bool:
    """Send e.g. notify("READY=1", "STATUS=4 workers"); False if not sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False

    if address.startswith("@"):
        address = "\0" + address[1:]

    data = "\n".join(lines).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, address)
    except OSError as exc:
        logger.warning("sd_notify failed socket=%s error=%s",
                       os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True
