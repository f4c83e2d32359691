"""io_uring under its fallbacks and limits: tiny SQ, no buffer ring, too few
provided buffers, multishot accept.  Each still echoes every connection.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from askr.uring import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR


def _uring_usable() -> bool:
    try:
        from askr.uring.probe import probe

        return probe()["usable"]
    except (ImportError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _uring_usable(), reason="io_uring unusable")


def listen(be):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    be.add_listener(sock.fileno())
    be.set_accepting(True)
    return sock


def echo_many(be, count=150, size=3000, sock=None, settle=0.0):
    own = sock is None
    if own:
        sock = listen(be)
    result = {}

    def clients():
        conns = [socket.create_connection(sock.getsockname(), 10) for _ in range(count)]
        payloads = [os.urandom(size) for _ in conns]
        for c, p in zip(conns, payloads, strict=True):
            c.sendall(p)
        ok = 0
        for c, p in zip(conns, payloads, strict=True):
            got = b""
            while len(got) < size:
                chunk = c.recv(size)
                if not chunk:
                    break
                got += chunk
            ok += got == p
            c.close()
        result["ok"] = ok

    thread = threading.Thread(target=clients, daemon=True)
    thread.start()
    # Let every client connect and send before the first wait, so that one
    # pass meets them all at once.
    time.sleep(settle)
    deadline = time.monotonic() + 20
    open_fds = set()
    while (thread.is_alive() or open_fds) and time.monotonic() < deadline:
        for kind, fd, value in be.wait(0.1):
            if kind == EV_ACCEPT:
                open_fds.add(fd)
                be.watch(fd)
            elif kind == EV_DATA:
                be.send(fd, value)
            elif kind in (EV_EOF, EV_ERROR):
                open_fds.discard(fd)
                be.close(fd)
    if own:
        sock.close()
    assert result.get("ok") == count
    assert not open_fds


def open_uring(**options):
    from askr.uring.ring import UringBackend

    return UringBackend(**options)


def test_tiny_submission_queue_is_flushed_not_overrun():
    # Multishot accept and clients that are all waiting already: the first
    # pass reaps ~150 accepts and must queue a recv for each into 8 slots.
    be = open_uring(entries=8, multishot_accept=True)
    try:
        echo_many(be, settle=0.5)
        assert be.stats()["sq_full"] > 0
    finally:
        be.shutdown()


def test_without_buffer_ring_plain_buffers_are_used():
    be = open_uring(nbufs=0)
    try:
        assert not be.features["buf_ring"]
        assert not be.features["multishot_recv"]
        echo_many(be)
    finally:
        be.shutdown()


def test_running_out_of_provided_buffers_loses_no_data():
    be = open_uring(nbufs=2, bufsize=1024)
    try:
        echo_many(be)
        assert be.stats()["enobufs"] > 0
    finally:
        be.shutdown()


def test_multishot_accept_is_cancelled_by_gating():
    be = open_uring(multishot_accept=True)
    try:
        assert be.features["multishot_accept"]
        sock = listen(be)
        echo_many(be, count=50, sock=sock)
        be.set_accepting(False)
        # The cancellation is in effect on return: a new client is not
        # accepted here, and the cancelled accept is reaped by the next wait.
        late = socket.create_connection(sock.getsockname(), 10)
        events = []
        for _ in range(5):
            events += be.wait(0.05)
        assert not [e for e in events if e[0] == EV_ACCEPT]
        assert be._lib.askr_accepts_armed(be._ring) == 0
        late.close()
        sock.close()
    finally:
        be.shutdown()


def test_provided_buffers_come_back_after_eof_and_errors():
    """A ring of four buffers stays usable over sixty connection lifetimes:
    no completion path (data, EOF, close) keeps a buffer."""
    be = open_uring(nbufs=4, bufsize=1024)
    sock = listen(be)
    try:
        for _ in range(5):
            echo_many(be, count=12, size=100, sock=sock)
        assert be.stats()["connections"] == 0
    finally:
        be.shutdown()
        sock.close()
