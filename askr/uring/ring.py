"""The io_uring backend: Python policy over the batched C shim.

Facts.  Dispatching every completion through Python makes io_uring no
faster than epoll; what pays is one crossing into C per loop pass.  So
``askr_ring_wait`` (see _uring_shim.c) submits, waits, drains the CQ,
copies received bytes into ``self._arena`` and re-arms recv and accept;
this module turns the compact event array into the tuples of the DESIGN
interface and keeps the policy:

* Sends.  One send per fd is in flight (unlinked sends on a socket may
  complete out of order); later sends wait in a per-fd deque.  The kernel
  reads straight out of the caller's bytes object (no copy), which is kept
  alive until its completion.  Several small queued items are joined once
  into one send.  Partial sends are finished in C.  A send is prepared at
  once but submitted with the next ``wait()`` (or inside ``send_sync``):
  one io_uring_enter carries every send of a loop pass.
* Files.  ``sendfile`` hands a head and a file range to the shim, which
  sends them at once with send(2) and sendfile(2) (zero-copy, no Python
  buffer), and finishes what the socket did not take from the ring
  (POLLOUT polls), reporting one completion.  Usually all of it goes out
  inside the call and EV_SENT comes with the next wait, as on epoll.
  The head waits for the file's first bytes (MSG_MORE, one segment) only
  when the last wait() brought several events (see base.py, BUSY_CORK).
* Accept gating.  ``set_accepting(False)`` cancels the armed accepts and
  reaps until none is armed, so no accept completes into this process
  afterwards; an accept that completed first is delivered, not lost.
* Close is synchronous: cancel all on the fd, reap until nothing is in
  flight, close(2).  No completion can then refer to a reused fd number.
* Completions seen while blocking (send_sync, close, set_accepting) are
  kept in ``self._pending`` for the next ``wait()``.
* Accept is single-shot by default, re-armed in C after each connection
  while accepting: an idle worker takes one connection per loop pass, so a
  burst spreads over the idle workers instead of queueing behind one.
  ``multishot_accept=True`` is for a single worker, where nobody competes.
* ``forget=("ext_arg", "cancel_fd")`` runs the paths of kernels without
  them (a timeout SQE per timed wait; one cancel per pending operation at
  close), so tests on a newer kernel cover those paths too.
* Ownership.  An accepted fd belongs to the caller until ``watch()`` or
  ``send()``; after that only ``close()`` may close it.

The ring is created after fork, in the worker that uses it: with
SINGLE_ISSUER only the creating task may submit.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
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
    FileItem,
    decode_sockaddr,
)

log = logging.getLogger("askr.uring")

# Set-up flags (linux/io_uring.h); all are in liburing 2.3's headers.
SETUP_SUBMIT_ALL = 1 << 7
SETUP_COOP_TASKRUN = 1 << 8
SETUP_TASKRUN_FLAG = 1 << 9
SETUP_SINGLE_ISSUER = 1 << 12
SETUP_DEFER_TASKRUN = 1 << 13
SETUP_NO_SQARRAY = 1 << 16  # newer than liburing 2.3; probed, never used

SETUP_FLAG_NAMES = {
    "SUBMIT_ALL": SETUP_SUBMIT_ALL,
    "COOP_TASKRUN": SETUP_COOP_TASKRUN,
    "TASKRUN_FLAG": SETUP_TASKRUN_FLAG,
    "SINGLE_ISSUER": SETUP_SINGLE_ISSUER,
    "DEFER_TASKRUN": SETUP_DEFER_TASKRUN,
}
WANT_FLAGS = (
    SETUP_SUBMIT_ALL | SETUP_COOP_TASKRUN | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN
)

# Feature bits of askr_ring_features() (FEAT_* in the shim).
FEATURE_BITS = {
    "buf_ring": 1,
    "multishot_recv": 2,
    "multishot_accept": 4,
    "ext_arg": 8,
    "fast_poll": 16,
    "nodrop": 32,
    "registered_ring": 64,
    "cancel_fd": 128,
}

# Features the shim picks per call, so a test can forget them and run the
# older kernels' path (5.10 has neither).
FORGETTABLE = ("ext_arg", "cancel_fd")

# Event kinds of the shim (K_* in _uring_shim.c).
K_ACCEPT, K_ACCEPT_ERR, K_DATA, K_EOF, K_RECV_ERR, K_SEND_DONE, K_SEND_ERR = range(1, 8)

CLOSE_REAP_LIMIT = 2.0  # seconds to reap cancellations before giving up
# One wait of close()'s reap loop.  A cancellation's completion is nothing
# for Python, so a wait runs to its timeout: 50 ms here delayed every
# "Connection: close" response's end by 50 ms.
CLOSE_REAP_STEP = 0.001
JOIN_LIMIT = 64 * 1024  # join queued small sends up to this many bytes



class UringBackend:
    """io_uring loop backend (see the module docstring)."""

    name = "uring"

    def __init__(
        self,
        reason: str = "",
        *,
        entries: int = 1024,
        nbufs: int = 256,
        bufsize: int = 16384,
        max_events: int = 1024,
        multishot_accept: bool = False,
        forget: tuple[str, ...] = (),
    ) -> None:
        from ._askr_uring import ffi, lib

        self._ffi = ffi
        self._lib = lib
        err = ffi.new("int *")
        ring = lib.askr_ring_open(entries, WANT_FLAGS, nbufs, bufsize, err)
        if ring == ffi.NULL:
            raise OSError(-err[0], "io_uring set-up: " + os.strerror(-err[0]))
        self._ring = ring
        lib.askr_set_multishot_accept(ring, int(multishot_accept))
        for name in forget:
            if name not in FORGETTABLE:
                raise ValueError(f"cannot forget io_uring feature {name!r}")
            lib.askr_forget_features(ring, FEATURE_BITS[name])

        self.reason = reason
        self._max = max_events
        self._evs = ffi.new("askr_ev[]", max_events)
        self._evview = memoryview(ffi.buffer(self._evs)).cast("q")
        self._arena_size = max(bufsize * 64, 1 << 20)
        self._arena = ffi.new("char[]", self._arena_size)
        self._abuf = ffi.buffer(self._arena)
        self._stats_out = ffi.new("uint64_t[]", 8)

        self._pending: list[tuple[int, int, object]] = []
        self._listeners: list[int] = []
        self._accepting = False
        self._accept_retry: dict[int, float] = {}
        self._accept_logged = -ACCEPT_LOG_EVERY
        self._conns: set[int] = set()
        self._paused: dict[int, list[tuple[int, int, object]]] = {}
        self._closing: set[int] = set()
        self._sendq: dict[int, collections.deque] = {}
        self._inflight: dict[int, object] = {}
        self._sent: dict[int, int] = {}
        self._send_failed: set[int] = set()
        self._counts: collections.Counter = collections.Counter()
        self._waits = 0  # plain ints: counted on every pass
        self._events = 0
        self._graveyard: list[object] = []
        self._busy = False  # the last wait() returned several events

        self.flags = [
            n for n, b in SETUP_FLAG_NAMES.items() if lib.askr_ring_flags(ring) & b
        ]
        feats = lib.askr_ring_features(ring)
        self.features = {n: bool(feats & b) for n, b in FEATURE_BITS.items()}

    # ---- listeners and accept gating ------------------------------------

    def add_listener(self, fd: int) -> None:
        """Accept connections from a non-blocking listening socket."""
        ret = self._lib.askr_add_listener(self._ring, fd)
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))
        self._listeners.append(fd)

    def set_accepting(self, on: bool) -> None:
        """Accept only while on.  Off returns once the kernel has taken any
        pending accept off the listeners (the shim submits the cancel at
        once); the cancellations are reaped with the next wait()."""
        on = bool(on)
        if on == self._accepting:
            return
        self._accepting = on
        self._check(self._lib.askr_set_accepting(self._ring, int(on)))

    # ---- receiving ------------------------------------------------------

    def watch(self, fd: int) -> None:
        """Start receiving on fd (EV_DATA / EV_EOF / EV_ERROR)."""
        self._conns.add(fd)
        self._check(self._lib.askr_watch(self._ring, fd))

    def pause(self, fd: int) -> None:
        """Stop delivering data for fd; data already received is held back."""
        if fd in self._paused:
            return
        self._paused[fd] = []
        self._check(self._lib.askr_pause(self._ring, fd))

    def resume(self, fd: int) -> None:
        """Deliver held data (at the next wait) and receive again."""
        held = self._paused.pop(fd, None)
        if held is None:
            return
        self._pending.extend(held)
        if not any(ev[0] in (EV_EOF, EV_ERROR) for ev in held):
            self._check(self._lib.askr_resume(self._ring, fd))

    # ---- sending --------------------------------------------------------

    def send(self, fd: int, data: bytes) -> None:
        """Queue data for fd behind what is queued already."""
        if fd in self._inflight:
            if not data or fd in self._send_failed:
                return
            q = self._sendq.get(fd)
            if q is None:
                q = self._sendq[fd] = collections.deque()
            q.append(data)
        elif type(data) is bytes and data and fd not in self._send_failed:
            self._inflight[fd] = data  # fast path of _start, inlined
            ret = self._lib.askr_send(self._ring, fd, data, len(data))
            if ret < 0:
                self._send_error(fd, -ret)
        elif data and fd not in self._send_failed:
            self._start(fd, data)

    def sendfile(
        self, fd: int, file_fd: int, offset: int, count: int, head: bytes = b""
    ) -> None:
        """Queue head, then count bytes of file_fd from offset.

        Sent from the shim (send(2) + sendfile(2), then POLLOUT waits in the
        ring); file_fd is only borrowed: the caller may close it at once.
        """
        if fd in self._send_failed:
            return
        if count <= 0:
            self.send(fd, head)
            return
        if fd not in self._inflight:
            self._send_file(fd, head, file_fd, offset, count)
            return
        q = self._sendq.get(fd)
        if q is None:
            q = self._sendq[fd] = collections.deque()
        if head:
            q.append(head)
        q.append(FileItem(os.dup(file_fd), offset, count))

    def _send_file(
        self, fd: int, head: bytes, file_fd: int, offset: int, count: int
    ) -> bool:
        """head + file range with nothing in flight for fd; True when it all
        went out at once (counted in self._sent if a queue is being worked
        through, else reported as EV_SENT)."""
        ret = self._lib.askr_send_file(
            self._ring, fd, head, len(head), file_fd, offset, count, self._busy
        )
        if ret == 1:
            if fd in self._sendq:
                self._sent[fd] = self._sent.get(fd, 0) + len(head) + count
            else:
                self._pending.append((EV_SENT, fd, len(head) + count))
            return True
        if ret == 0:
            self._inflight[fd] = head  # read by the kernel until completion
        else:
            self._send_error(fd, -ret)
        return False

    def send_sync(self, fd: int, data: bytes, timeout: float) -> bool:
        """Queue data, then reap until fd's queue is written or timeout."""
        self.send(fd, data)
        deadline = time.monotonic() + timeout
        while fd in self._inflight and fd not in self._send_failed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._reap(left)
        return fd not in self._send_failed

    def _start(self, fd: int, data: bytes) -> None:
        """Hand data to the kernel; it stays referenced until completion.

        A bytes object goes to the char* argument as is: cffi passes the
        address of its internal buffer, which does not move while the object
        lives.  Other buffers go through ffi.from_buffer, also without a copy.
        """
        if type(data) is bytes:
            self._inflight[fd] = data
            ret = self._lib.askr_send(self._ring, fd, data, len(data))
        else:
            buf = self._ffi.from_buffer(data)
            self._inflight[fd] = (data, buf)
            ret = self._lib.askr_send(self._ring, fd, buf, len(buf))
        if ret < 0:
            self._send_error(fd, -ret)

    def _next_send(self, fd: int) -> None:
        """Start the next queued item for fd, or report EV_SENT."""
        q = self._sendq[fd]
        while q:
            head = q.popleft()
            if isinstance(head, FileItem):
                item, head = head, b""
            else:
                if q and not isinstance(q[0], FileItem) and len(head) < JOIN_LIMIT:
                    parts = [head]
                    size = len(head)
                    while q and not isinstance(q[0], FileItem) and size < JOIN_LIMIT:
                        size += len(q[0])
                        parts.append(q.popleft())
                    head = b"".join(parts)  # the one copy of small queued items
                if not q or not isinstance(q[0], FileItem):
                    self._start(fd, head)
                    return
                item = q.popleft()
                if type(head) is not bytes:
                    head = bytes(head)  # the shim takes a char *
            try:
                if not self._send_file(fd, head, item.fd, item.offset, item.count):
                    return  # in flight, or failed (queue dropped)
            finally:
                os.close(item.fd)

        del self._sendq[fd]
        self._pending.append((EV_SENT, fd, self._sent.pop(fd, 0)))

    def _send_error(self, fd: int, err: int) -> None:
        self._send_failed.add(fd)
        self._inflight.pop(fd, None)
        self._drop_queue(fd)
        self._pending.append((EV_ERROR, fd, err))

    def _drop_queue(self, fd: int) -> None:
        for item in self._sendq.pop(fd, ()):
            if isinstance(item, FileItem):
                os.close(item.fd)
        self._sent.pop(fd, None)

    # ---- closing --------------------------------------------------------

    def close(self, fd: int) -> None:
        """Cancel what is pending on fd, close it; no more events for it."""
        lib = self._lib
        self._closing.add(fd)
        queued = lib.askr_cancel_fd(self._ring, fd) >= 0

        deadline = time.monotonic() + CLOSE_REAP_LIMIT
        while lib.askr_inflight(self._ring, fd) > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._reap(min(left, CLOSE_REAP_STEP))
            if not queued:  # the SQ was full: the reap made room
                queued = lib.askr_cancel_fd(self._ring, fd) >= 0
        stuck = lib.askr_inflight(self._ring, fd) > 0
        if stuck:
            # The kernel may still read the send buffer: keep it alive.
            log.error(
                "askr.uring: fd %d still busy %.1fs after cancel", fd, CLOSE_REAP_LIMIT
            )
            self._counts["stuck_closes"] += 1
            self._graveyard.append(self._inflight.get(fd))
        try:
            os.close(fd)
        except OSError:
            pass
        lib.askr_forget(self._ring, fd)

        self._drop_queue(fd)
        self._inflight.pop(fd, None)
        self._conns.discard(fd)
        self._paused.pop(fd, None)
        self._send_failed.discard(fd)
        self._pending = [ev for ev in self._pending if ev[1] != fd]
        self._closing.discard(fd)

    # ---- the loop -------------------------------------------------------

    def wait(self, timeout: float | None) -> list[tuple[int, int, object]]:
        """One submit-and-wait; every ready completion as event tuples."""
        if self._accept_retry:
            timeout = self._retry_accepts(timeout)
        elif self._accepting and (
            self._lib.askr_accepts_armed(self._ring) < len(self._listeners)
        ):
            # A re-arm the shim could not queue (SQ full and the kernel
            # busy): arm again rather than stop accepting for good.
            self._lib.askr_set_accepting(self._ring, 1)
        self._reap(0 if self._pending else timeout)
        out, self._pending = self._pending, []
        self._busy = len(out) > 1
        return out

    def _retry_accepts(self, timeout: float | None) -> float | None:
        now = time.monotonic()
        for lfd, when in list(self._accept_retry.items()):
            if when <= now:
                del self._accept_retry[lfd]
                self._lib.askr_arm_accept(self._ring, lfd)
            else:
                left = when - now
                timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _reap(self, timeout: float | None) -> None:
        """One askr_ring_wait; convert its events into self._pending."""
        tns = -1 if timeout is None else int(max(0.0, timeout) * 1e9)
        n = self._lib.askr_ring_wait(
            self._ring, tns, self._evs, self._max, self._arena, self._arena_size
        )
        if n < 0:
            raise OSError(-n, "io_uring wait: " + os.strerror(-n))
        self._waits += 1
        self._events += n

        out = self._pending
        abuf = self._abuf
        closing = self._closing
        paused = self._paused
        inflight = self._inflight
        sendq = self._sendq
        flat = self._evview[: n * 5].tolist()
        it = iter(flat)
        for kind, fd, value, off, size in zip(it, it, it, it, it):
            if kind == K_DATA:
                if fd in closing:
                    continue
                if fd in paused:
                    paused[fd].append((EV_DATA, fd, abuf[off : off + size]))
                else:
                    out.append((EV_DATA, fd, abuf[off : off + size]))
            elif kind == K_SEND_DONE:
                if fd in closing:
                    continue
                del inflight[fd]
                if fd in sendq:
                    self._sent[fd] = self._sent.get(fd, 0) + value
                    self._next_send(fd)
                else:
                    out.append((EV_SENT, fd, value))
            elif kind == K_ACCEPT:
                peer = decode_sockaddr(abuf[off : off + 128])
                local = decode_sockaddr(abuf[off + 128 : off + 256])
                self._counts["accepts"] += 1
                out.append((EV_ACCEPT, fd, peer + local))
            elif kind == K_EOF or kind == K_RECV_ERR:
                if fd in closing:
                    continue
                ev = (EV_EOF, fd, None) if kind == K_EOF else (EV_ERROR, fd, value)
                paused.get(fd, out).append(ev)
            elif kind == K_SEND_ERR:
                if fd not in closing:
                    self._send_error(fd, value)
            elif kind == K_ACCEPT_ERR:
                self._accept_failed(fd, value)

    def _accept_failed(self, lfd: int, err: int) -> None:
        self._counts["accept_errors"] += 1
        if err in ACCEPT_PAUSE_ERRNOS:
            now = time.monotonic()
            if now - self._accept_logged >= ACCEPT_LOG_EVERY:
                self._accept_logged = now
                log.warning(
                    "askr.uring: accept on fd %d failed: %s; pausing accepts %.1fs",
                    lfd,
                    errno.errorcode.get(err, err),
                    ACCEPT_PAUSE,
                )
            self._accept_retry[lfd] = time.monotonic() + ACCEPT_PAUSE
        else:
            self._lib.askr_arm_accept(self._ring, lfd)

    def _check(self, ret: int) -> None:
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))

    # ---- introspection and teardown ------------------------------------

    def stats(self) -> dict:
        """Counters of this backend; "backend" names it."""
        out = self._stats_out
        self._lib.askr_ring_stats(self._ring, out)
        names = (
            "enters",
            "cqes",
            "sq_full",
            "enobufs",
            "partial_sends",
            "bytes_in",
            "bytes_out",
        )
        result = {
            "backend": self.name,
            "flags": list(self.flags),
            "features": dict(self.features),
            "connections": len(self._conns),
        }
        result.update({name: int(out[i]) for i, name in enumerate(names)})
        result.update(self._counts)
        result["waits"] = self._waits
        result["events"] = self._events
        return result

    def shutdown(self) -> None:
        """Close every connection this backend knows and free the ring."""
        if self._ring is None:
            return
        self.set_accepting(False)
        # watch() or send() made the fd ours (as on epoll): close it, which
        # also reaps sends still reading from Python buffers.
        for fd in self._conns | set(self._inflight) | set(self._sendq):
            self.close(fd)
        for fd in list(self._sendq):
            self._drop_queue(fd)
        self._lib.askr_ring_close(self._ring)
        self._ring = None
