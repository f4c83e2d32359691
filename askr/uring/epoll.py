"""The epoll backend: the same interface over non-blocking sockets.

Used with io="epoll", or by io="auto" when io_uring is unusable.  On
readiness it makes the system call itself and emits the same event tuples
as the io_uring backend.

* Listeners are registered with EPOLLEXCLUSIVE, so the kernel wakes one
  waiting process per connection instead of all of them, and a process that
  is not accepting takes its listeners out of the epoll set: it is never
  woken for, and never takes, a connection it cannot serve.
* One accept and one recv per ready fd per pass: level-triggered epoll
  reports the rest next pass, and a busy peer cannot starve the others.
* An fd with nothing to wait for (EOF seen and nothing to send, or paused
  with nothing to send) is removed from the set: EPOLLHUP and EPOLLERR are
  reported whatever the mask, and would otherwise spin the loop.
* Sends are tried at once; what the socket does not take waits in a per-fd
  deque, flushed on EPOLLOUT.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import select
import socket
import time

from .base import (
    ACCEPT_LOG_EVERY,
    ACCEPT_PAUSE,
    ACCEPT_PAUSE_ERRNOS,
    EV_ACCEPT,
    EV_DATA,
    EV_EOF,
    EV_ERROR,
    EV_SENT,
    FILE_CHUNK,
    FileItem,
    addr_pair,
)

log = logging.getLogger("askr.uring")

EPOLLEXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 1 << 28)
READ_MASK = select.EPOLLIN | select.EPOLLRDHUP
READY = READ_MASK | select.EPOLLHUP | select.EPOLLERR
EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
OUT_OR_ERR = select.EPOLLOUT | select.EPOLLERR
HUP_OR_ERR = select.EPOLLHUP | select.EPOLLERR
MSG_NOSIGNAL = socket.MSG_NOSIGNAL
MSG_MORE_NOSIGNAL = socket.MSG_MORE | socket.MSG_NOSIGNAL


class Conn:
    """Per-connection state of the epoll backend."""

    __slots__ = (
        "failed",
        "fd",
        "mask",
        "offset",
        "paused",
        "sendq",
        "sent",
        "sock",
        "watched",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.watched = False
        self.paused = False
        self.mask = 0  # what is registered in epoll (0: not)
        self.sendq: collections.deque = collections.deque()
        self.offset = 0  # bytes of sendq[0] already written
        self.sent = 0
        self.failed = False



class EpollBackend:
    """epoll loop backend (see the module docstring)."""

    name = "epoll"

    def __init__(
        self,
        reason: str = "",
        *,
        bufsize: int = 65536,
        max_events: int = 1024,
    ) -> None:
        self.reason = reason
        self._ep = select.epoll()
        self._bufsize = bufsize
        self._max = max_events
        self._listeners: dict[int, socket.socket] = {}  # our dup's fd -> sock
        self._registered_listeners: set[int] = set()
        self._accepting = False
        self._accept_retry: dict[int, float] = {}
        self._accept_logged = -ACCEPT_LOG_EVERY
        self._conns: dict[int, Conn] = {}
        self._pending: list[tuple[int, int, object]] = []
        self._counts: collections.Counter = collections.Counter()
        self._waits = 0  # plain ints: counted on every pass
        self._events = 0
        self._bytes_out = 0  # a plain int: counted on the hot path
        self._busy = False  # the last wait() returned several events

    # ---- listeners and accept gating ------------------------------------

    def add_listener(self, fd: int) -> None:
        """Accept from fd (a dup is kept; the caller still owns fd)."""
        sock = socket.socket(fileno=os.dup(fd))
        sock.setblocking(False)
        self._listeners[sock.fileno()] = sock
        if self._accepting:
            self._register_listener(sock.fileno())

    def set_accepting(self, on: bool) -> None:
        """Accept only while on: off takes the listeners out of epoll."""
        self._accepting = bool(on)
        for lfd in self._listeners:
            if on and lfd not in self._accept_retry:
                self._register_listener(lfd)
            elif not on:
                self._unregister_listener(lfd)

    def _register_listener(self, lfd: int) -> None:
        if lfd not in self._registered_listeners:
            self._ep.register(lfd, select.EPOLLIN | EPOLLEXCLUSIVE)
            self._registered_listeners.add(lfd)

    def _unregister_listener(self, lfd: int) -> None:
        if lfd in self._registered_listeners:
            self._ep.unregister(lfd)
            self._registered_listeners.discard(lfd)

    def _accept(self, lfd: int) -> None:
        try:
            sock, _ = self._listeners[lfd].accept()
        except (BlockingIOError, InterruptedError):
            return  # another process took it
        except OSError as exc:
            self._counts["accept_errors"] += 1
            if exc.errno not in ACCEPT_PAUSE_ERRNOS:
                return  # ECONNABORTED and the like: the next one may work
            now = time.monotonic()
            if now - self._accept_logged >= ACCEPT_LOG_EVERY:
                self._accept_logged = now
                log.warning(
                    "askr.uring: accept on fd %d failed: %s; pausing accepts %.1fs",
                    lfd,
                    errno.errorcode.get(exc.errno, exc.errno),
                    ACCEPT_PAUSE,
                )
            self._unregister_listener(lfd)
            self._accept_retry[lfd] = now + ACCEPT_PAUSE
            return

        sock.setblocking(False)
        try:
            addrs = addr_pair(sock.getpeername()) + addr_pair(sock.getsockname())
        except OSError:
            addrs = ("", 0, "", 0)  # already reset; recv will say so
        # A bare fd, as io_uring gives it: until watch() or send() the caller
        # owns it, and may close it with os.close() as well as with close().
        self._counts["accepts"] += 1
        self._pending.append((EV_ACCEPT, sock.detach(), addrs))

    # ---- receiving ------------------------------------------------------

    def _conn(self, fd: int) -> Conn:
        conn = self._conns.get(fd)
        if conn is None:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            conn = self._conns[fd] = Conn(sock)
        return conn

    def watch(self, fd: int) -> None:
        """Start receiving on fd."""
        conn = self._conn(fd)
        conn.watched = True
        conn.paused = False
        self._update(conn)

    def pause(self, fd: int) -> None:
        """Stop receiving on fd (backpressure)."""
        conn = self._conn(fd)
        conn.paused = True
        self._update(conn)

    def resume(self, fd: int) -> None:
        """Receive on fd again."""
        conn = self._conn(fd)
        conn.paused = False
        self._update(conn)

    def _update(self, conn: Conn) -> None:
        """Make the epoll registration match what conn waits for."""
        want = 0
        if conn.watched and not conn.paused:
            want |= READ_MASK
        if conn.sendq and not conn.failed:
            want |= select.EPOLLOUT
        if want == conn.mask:
            return
        if not want:
            self._ep.unregister(conn.fd)
        elif not conn.mask:
            self._ep.register(conn.fd, want)
        else:
            self._ep.modify(conn.fd, want)
        conn.mask = want

    # ---- sending --------------------------------------------------------

    def send(self, fd: int, data: bytes) -> None:
        """Queue data for fd; written at once as far as the socket takes it."""
        conn = self._conns.get(fd) or self._conn(fd)
        if not data or conn.failed:
            return
        if conn.sendq:  # waiting for EPOLLOUT already: keep the order
            conn.sendq.append(data)
            return

        # Fast path, the usual case: the socket takes the whole response.
        try:
            n = conn.sock.send(data, MSG_NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            conn.failed = True
            self._pending.append((EV_ERROR, fd, exc.errno or errno.EIO))
            return
        self._bytes_out += n
        if n == len(data):
            self._pending.append((EV_SENT, fd, conn.sent + n))
            conn.sent = 0
            return

        conn.sent += n
        conn.offset = n
        conn.sendq.append(data)
        self._counts["partial_sends"] += 1
        self._update(conn)

    def sendfile(
        self, fd: int, file_fd: int, offset: int, count: int, head: bytes = b""
    ) -> None:
        """Queue head, then count bytes of file_fd from offset (os.sendfile).

        With nothing queued, both are written at once (the head with
        MSG_MORE while busy, see base.py); file_fd is only borrowed
        (duplicated if the socket cannot take it all now).
        """
        conn = self._conns.get(fd) or self._conn(fd)
        if conn.failed:
            return
        if count <= 0:
            self.send(fd, head)
            return
        if conn.sendq:  # waiting for EPOLLOUT already: keep the order
            if head:
                conn.sendq.append(head)
            conn.sendq.append(FileItem(os.dup(file_fd), offset, count))
            return
        self._send_file_now(conn, head, file_fd, offset, count)

    def _send_file_now(
        self, conn: Conn, head: bytes, file_fd: int, offset: int, count: int
    ) -> None:
        """Write head and file range now as far as the socket takes them
        (usually all: EV_SENT is pending); queue the rest for EPOLLOUT."""
        fd = conn.fd
        n = 0
        try:
            if head:
                n = conn.sock.send(
                    head, MSG_MORE_NOSIGNAL if self._busy else MSG_NOSIGNAL
                )
                if n < len(head):
                    head = head[n:]
                    raise BlockingIOError
                head = b""
            while count > 0:
                sent = os.sendfile(fd, file_fd, offset, min(count, FILE_CHUNK))
                if sent == 0:  # the file shrank: the body would be short
                    raise OSError(errno.EIO, "file shorter than announced")
                n += sent
                offset += sent
                count -= sent
        except (BlockingIOError, InterruptedError):
            self._bytes_out += n
            conn.sent += n
            if head:
                conn.offset = 0
                conn.sendq.append(head)
            conn.sendq.append(FileItem(os.dup(file_fd), offset, count))
            self._counts["partial_sends"] += 1
            self._update(conn)
            return
        except OSError as exc:
            conn.failed = True
            self._pending.append((EV_ERROR, fd, exc.errno or errno.EIO))
            return
        self._bytes_out += n
        self._pending.append((EV_SENT, fd, conn.sent + n))
        conn.sent = 0

    def send_sync(self, fd: int, data: bytes, timeout: float) -> bool:
        """Queue data and block until fd's queue is written or timeout.

        Only fd is polled: other fds stay ready for the next wait().
        """
        conn = self._conn(fd)
        self.send(fd, data)
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while conn.sendq and not conn.failed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(left * 1000)
            self._flush(conn)
        return not conn.failed

    def _flush(self, conn: Conn) -> None:
        """Write queued items until the socket is full or the queue empty."""
        q = conn.sendq
        sock = conn.sock
        try:
            while q:
                head = q[0]
                if isinstance(head, FileItem):
                    n = os.sendfile(
                        conn.fd, head.fd, head.offset, min(head.count, FILE_CHUNK)
                    )
                    if n == 0:  # the file shrank: the body would be short
                        raise OSError(errno.EIO, "file shorter than announced")
                    head.offset += n
                    head.count -= n
                    if head.count <= 0:
                        os.close(head.fd)
                        q.popleft()
                else:
                    view = memoryview(head)[conn.offset :] if conn.offset else head
                    n = sock.send(view, socket.MSG_NOSIGNAL)
                    conn.offset += n
                    if conn.offset >= len(head):
                        conn.offset = 0
                        q.popleft()
                conn.sent += n
                self._bytes_out += n
        except (BlockingIOError, InterruptedError):
            self._counts["partial_sends"] += 1
        except OSError as exc:
            conn.failed = True
            self._drop_queue(conn)
            self._pending.append((EV_ERROR, conn.fd, exc.errno or errno.EIO))

        if not q and not conn.failed:
            self._pending.append((EV_SENT, conn.fd, conn.sent))
            conn.sent = 0
        self._update(conn)

    def _drop_queue(self, conn: Conn) -> None:
        for item in conn.sendq:
            if isinstance(item, FileItem):
                os.close(item.fd)
        conn.sendq.clear()
        conn.offset = 0

    # ---- closing --------------------------------------------------------

    def close(self, fd: int) -> None:
        """Forget fd and close it; no more events for it."""
        conn = self._conns.pop(fd, None)
        if conn is None:
            try:
                os.close(fd)
            except OSError:
                pass
        else:
            if conn.mask:
                self._ep.unregister(fd)
            self._drop_queue(conn)
            conn.sock.close()
        self._pending = [ev for ev in self._pending if ev[1] != fd]

    # ---- the loop -------------------------------------------------------

    def wait(self, timeout: float | None) -> list[tuple[int, int, object]]:
        """One epoll_wait; the syscalls for what is ready; the events."""
        if self._accept_retry:
            timeout = self._retry_accepts(timeout)
        if self._pending:
            timeout = 0
        ready = self._ep.poll(-1 if timeout is None else timeout, self._max)
        self._waits += 1

        conns = self._conns
        pending = self._pending
        bufsize = self._bufsize
        for fd, mask in ready:
            conn = conns.get(fd)
            if conn is None:
                if fd in self._listeners:
                    self._accept(fd)
                continue
            if mask & OUT_OR_ERR and (mask & EPOLLOUT or conn.sendq):
                self._flush(conn)
            if conn.mask & EPOLLIN and mask & READY:  # registered: watched, unpaused
                try:  # one recv per pass: level-triggered epoll says the rest
                    data = conn.sock.recv(bufsize)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    data = None
                    conn.watched = False
                    self._update(conn)
                    pending.append((EV_ERROR, fd, exc.errno or errno.EIO))
                if data:
                    pending.append((EV_DATA, fd, data))
                elif data is not None:
                    conn.watched = False
                    self._update(conn)
                    pending.append((EV_EOF, fd, None))
            elif mask & HUP_OR_ERR and not conn.sendq:
                conn.watched = False
                self._update(conn)

        out, self._pending = self._pending, []
        self._events += len(out)
        self._busy = len(out) > 1
        return out

    def _retry_accepts(self, timeout: float | None) -> float | None:
        now = time.monotonic()
        for lfd, when in list(self._accept_retry.items()):
            if when <= now:
                del self._accept_retry[lfd]
                if self._accepting:
                    self._register_listener(lfd)
            else:
                left = when - now
                timeout = left if timeout is None else min(timeout, left)
        return timeout

    # ---- introspection and teardown ------------------------------------

    def stats(self) -> dict:
        """Counters of this backend; "backend" names it."""
        result = {
            "backend": self.name,
            "connections": len(self._conns),
            "bytes_out": self._bytes_out,
        }
        result.update(self._counts)
        result["waits"] = self._waits
        result["events"] = self._events
        return result

    def shutdown(self) -> None:
        """Close every connection, our listener dups and the epoll fd."""
        for fd in list(self._conns):
            self.close(fd)
        for sock in self._listeners.values():
            sock.close()
        self._listeners.clear()
        self._registered_listeners.clear()
        self._ep.close()
