"""What both backends share: the event kinds and small helpers.

EV_* are the first element of every event tuple that ``wait()`` returns
(see docs/DESIGN.md, askr.uring).
"""

from __future__ import annotations

import errno
import socket
import struct

EV_ACCEPT = 1  # (EV_ACCEPT, conn_fd, (peer_host, peer_port, local_host, local_port))
EV_DATA = 2  # (EV_DATA, fd, bytes)
EV_EOF = 3  # (EV_EOF, fd, None): the peer closed its side
EV_ERROR = 4  # (EV_ERROR, fd, errno)
EV_SENT = 5  # (EV_SENT, fd, nbytes): everything queued for fd is written

EV_NAMES = {
    EV_ACCEPT: "EV_ACCEPT",
    EV_DATA: "EV_DATA",
    EV_EOF: "EV_EOF",
    EV_ERROR: "EV_ERROR",
    EV_SENT: "EV_SENT",
}

# accept() errors that mean "out of descriptors or memory": retrying at once
# would spin on the same queued connection, so accepting pauses a moment.
ACCEPT_PAUSE_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
)
ACCEPT_PAUSE = 0.1  # seconds; long enough to let a few connections close
ACCEPT_LOG_EVERY = 10.0  # seconds between two "pausing accepts" warnings

# Files go out in chunks of this size so one static file cannot hold the
# loop or pin a large buffer.
FILE_CHUNK = 256 * 1024

# BUSY_CORK.  sendfile(fd, file_fd, offset, count, head) sends the head with
# MSG_MORE (head and first file bytes in one segment) only when the last
# wait() returned more than one event.  Measured with wrk on the 100 KB
# file, 2 workers: under load (c=64) the corked head saves a segment and a
# receiver wake-up per response, ~10 % more responses per CPU second; with
# a lone client (c=1) the head sent at once lets the client start on it
# while the body follows, ~5 % lower latency.


def decode_sockaddr(raw: bytes) -> tuple[str, int]:
    """(host, port) from a raw struct sockaddr as the kernel filled it."""
    family = int.from_bytes(raw[0:2], "little")
    if family == socket.AF_INET:
        port = struct.unpack("!H", raw[2:4])[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6:
        port = struct.unpack("!H", raw[2:4])[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    if family == socket.AF_UNIX:
        return raw[2:].split(b"\0", 1)[0].decode(errors="replace"), 0
    return "", 0


def addr_pair(addr: object) -> tuple[str, int]:
    """(host, port) from what socket.getpeername() returns for any family."""
    if isinstance(addr, tuple):
        return str(addr[0]), int(addr[1])
    if isinstance(addr, bytes):
        return addr.decode(errors="replace"), 0
    return str(addr or ""), 0


class FileItem:
    """A queued sendfile: a dup of the file fd and the range left to send."""

    __slots__ = ("count", "fd", "offset")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
