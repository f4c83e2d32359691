"""io_uring under its fallbacks and limits: tiny SQ, no buffer ring, too few
provided buffers, multishot accept.  Each still echoes every connection.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from loop_support import uring_usable

from askr.uring import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR

pytestmark = pytest.mark.skipif(not uring_usable(), reason="io_uring unusable")


def needs(feature: str):
    """Skip where the kernel lacks a feature the test is about (probed, as
    the backend does; e.g. 5.10 has neither buffer rings nor multishot)."""
    from askr.uring.probe import probe

    have = uring_usable() and probe()["features"][feature]
    return pytest.mark.skipif(not have, reason=f"kernel has no {feature}")


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


@needs("multishot_accept")
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


@needs("buf_ring")
def test_running_out_of_provided_buffers_loses_no_data():
    be = open_uring(nbufs=2, bufsize=1024)
    try:
        echo_many(be)
        assert be.stats()["enobufs"] > 0
    finally:
        be.shutdown()


@needs("multishot_accept")
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


def test_timed_waits_without_ext_arg_are_neither_cut_short_nor_late():
    """5.10's wait path: a timeout SQE per wait.  A wait that ends on an
    event must leave nothing behind that cuts a later wait short, and the
    wait still wakes at once for a connection."""
    be = open_uring(forget=("ext_arg",))
    sock = listen(be)
    try:
        # Waits of 0.3 s that each end on an event long before that.
        for _ in range(5):
            client = socket.create_connection(sock.getsockname(), 10)
            start = time.monotonic()
            events = be.wait(0.3)
            assert time.monotonic() - start < 0.25
            assert [e[0] for e in events] == [EV_ACCEPT]
            be.close(events[0][1])
            client.close()

        # Nothing to report now: a 1 s wait lasts its full second, even
        # though the earlier waits' 0.3 s would have run out inside it.
        start = time.monotonic()
        assert be.wait(1.0) == []
        assert 0.95 <= time.monotonic() - start < 2.0
    finally:
        be.shutdown()
        sock.close()


@pytest.mark.parametrize("forget", [(), ("cancel_fd",)], ids=["cancel_fd", "per_op"])
def test_closing_a_connection_cancels_its_pending_recv_and_send(forget):
    """The server closes a connection whose peer neither sends nor reads:
    a recv and a stuck send are in flight.  Close cancels both at once,
    with one cancel-by-fd or (before 5.19) one cancel per operation."""
    be = open_uring(forget=forget)
    sock = listen(be)
    try:
        client = socket.create_connection(sock.getsockname(), 10)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fd = None
        deadline = time.monotonic() + 5
        while fd is None and time.monotonic() < deadline:
            for kind, efd, _ in be.wait(0.1):
                if kind == EV_ACCEPT:
                    fd = efd
        be.watch(fd)
        be.send(fd, b"x" * (16 << 20))  # far more than the socket buffers
        be.wait(0.1)
        assert be._lib.askr_inflight(be._ring, fd) == 2

        start = time.monotonic()
        be.close(fd)
        assert time.monotonic() - start < 1.0
        assert be.stats().get("stuck_closes", 0) == 0
        client.close()
    finally:
        be.shutdown()
        sock.close()


def test_gating_cancels_a_single_shot_accept_without_cancel_flags():
    """set_accepting(False) cancels the armed accept by its user data alone
    (5.10 rejects cancel flags with EINVAL, which left the accept armed)."""
    be = open_uring(forget=("cancel_fd",))
    sock = listen(be)
    try:
        be.wait(0)
        assert be._lib.askr_accepts_armed(be._ring) == 1
        be.set_accepting(False)
        late = socket.create_connection(sock.getsockname(), 10)
        events = []
        for _ in range(4):
            events += be.wait(0.05)
        assert not [e for e in events if e[0] == EV_ACCEPT]
        # Still queued on the listener for another worker to take.
        sock.settimeout(2)
        conn, _ = sock.accept()
        conn.close()
        late.close()
    finally:
        be.shutdown()
        sock.close()
