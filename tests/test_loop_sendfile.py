"""sendfile(fd, file_fd, offset, count, head) on both loop backends.

A static response is a head and a file range.  Both backends write them
at once when the socket takes them (io_uring: send(2) + sendfile(2) in the
C shim, the rest from the ring after POLLOUT; epoll: the same in Python,
the rest on EPOLLOUT), and report one EV_SENT.  These tests force the slow
paths with tiny socket buffers and clients that do not read yet: files
larger than the socket buffer, files that shrink while they are sent,
peers that reset, connections closed mid-file, and descriptors counted
before and after.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time

import pytest
from loop_support import BACKENDS
from test_loop_backends import (
    Echo,
    accept_one,
    pump,
    recv_exactly,
    run_clients,
)

from askr.uring import EV_DATA, EV_ERROR, EV_SENT, open_backend


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tiny_buffers(be, listener, rcvbuf=4096):
    """A connection whose client receive buffer and server send buffer are
    as small as the kernel allows: anything over a few KiB waits."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    client.connect(listener.getsockname())
    client.settimeout(10)
    fd, client = accept_one(be, listener, client)
    with socket.socket(fileno=os.dup(fd)) as tweak:
        tweak.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return fd, client


def _sent(events, fd):
    return [e[2] for e in events if e[0] == EV_SENT and e[1] == fd]


def _errors(events, fd):
    return [e[2] for e in events if e[0] == EV_ERROR and e[1] == fd]


@pytest.mark.parametrize("busy", [False, True], ids=["head_at_once", "corked"])
def test_head_and_range_arrive_whole_with_one_ev_sent(be, listener, tmp_path,
                                                      busy):
    """With busy set (the last wait brought several events) the head goes
    with MSG_MORE and must still leave with the file (base.BUSY_CORK)."""
    data = os.urandom(300_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    fd, client = accept_one(be, listener)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 250000\r\n\r\n"
    expected = head + data[50_000:]
    file_fd = os.open(path, os.O_RDONLY)
    be._busy = busy
    be.sendfile(fd, file_fd, 50_000, 250_000, head)
    os.close(file_fd)  # borrowed only: the transfer must not need it
    with client:
        thread, result = run_clients(recv_exactly, client, len(expected))
        events = pump(be, lambda evs: not thread.is_alive() and _sent(evs, fd))
        assert result.get("value") == expected
        assert _sent(events, fd) == [len(expected)]
        assert not _errors(events, fd)
    be.close(fd)


def test_file_larger_than_socket_buffers_keeps_order(be, listener, tmp_path):
    """Head, file, then a plain send, then a second head and file, with a
    4 KiB send buffer and a client that reads only after everything was
    queued: every piece goes out through the slow path, in order."""
    data = os.urandom(2 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    fd, client = _tiny_buffers(be, listener)
    be._busy = True  # corked heads (MSG_MORE) on a full socket too
    with open(path, "rb") as f:
        be.sendfile(fd, f.fileno(), 0, len(data), b"HEAD1")
        be.send(fd, b"-between-")
        be.sendfile(fd, f.fileno(), 1000, 600_000, b"HEAD2")
        be.sendfile(fd, f.fileno(), 7, 3)  # no head
    expected = (b"HEAD1" + data + b"-between-" + b"HEAD2" + data[1000:601000]
                + data[7:10])
    with client:
        time.sleep(0.1)
        be.wait(0)
        thread, result = run_clients(recv_exactly, client, len(expected))
        events = pump(
            be,
            lambda evs: not thread.is_alive()
            and sum(_sent(evs, fd)) >= len(expected),
            timeout=30,
        )
        assert result.get("value") == expected
        assert sum(_sent(events, fd)) == len(expected)
        assert not _errors(events, fd)
    be.close(fd)


def test_file_truncated_while_sent_fails_the_connection(be, listener, tmp_path):
    """The response announced count bytes: a file that shrinks under the
    transfer must fail the connection (EV_ERROR, EIO), never end short and
    quietly, and the loop keeps serving others."""
    path = tmp_path / "shrinks.bin"
    path.write_bytes(b"s" * (4 << 20))
    fd, client = _tiny_buffers(be, listener)
    with open(path, "rb") as f:
        be.sendfile(fd, f.fileno(), 0, 4 << 20, b"HEAD")
    be.wait(0.05)  # the socket is full: the rest waits for room
    os.truncate(path, 100_000)
    with client:
        thread, result = run_clients(recv_exactly, client, (4 << 20) + 4)
        events = pump(be, lambda evs: _errors(evs, fd) or _sent(evs, fd),
                      timeout=20)
        assert _errors(events, fd) == [errno.EIO]
        assert not _sent(events, fd)
        be.close(fd)  # what the server does on EV_ERROR
        thread.join(10)
        got = result.get("value", b"")
        assert 4 <= len(got) < (4 << 20) + 4
        assert got[:4] == b"HEAD"

    echo = Echo(be)
    with socket.create_connection(listener.getsockname(), timeout=5) as other:
        other.sendall(b"next")
        thread, result = run_clients(recv_exactly, other, 4)
        pump(be, lambda evs: not thread.is_alive(), on_event=echo)
        assert result.get("value") == b"next"


def test_peer_reset_mid_file_is_an_error(be, listener, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"r" * (8 << 20))
    fd, client = _tiny_buffers(be, listener)
    with open(path, "rb") as f:
        be.sendfile(fd, f.fileno(), 0, 8 << 20, b"HEAD")
    be.wait(0.05)
    assert len(recv_exactly(client, 10_000)) == 10_000
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST with the rest unread
    events = pump(be, lambda evs: _errors(evs, fd) or _sent(evs, fd))
    assert _errors(events, fd)[0] in (errno.ECONNRESET, errno.EPIPE)
    assert not _sent(events, fd)
    be.close(fd)


def test_close_mid_file_stops_every_event(be, listener, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"c" * (8 << 20))
    fd, client = _tiny_buffers(be, listener)
    with client:
        with open(path, "rb") as f:
            be.sendfile(fd, f.fileno(), 0, 8 << 20, b"HEAD")
        be.wait(0.05)
        be.close(fd)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            assert [e for e in be.wait(0.05) if e[1] == fd] == []


def test_socket_still_receives_after_a_file(be, listener, tmp_path):
    """io_uring sets O_NONBLOCK on a socket for sendfile(2): its RECV must
    still wait for data (no spurious EAGAIN error) on this kernel."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"f" * 200_000)
    fd, client = accept_one(be, listener)
    be.watch(fd)
    with client, open(path, "rb") as f:
        be.sendfile(fd, f.fileno(), 0, 200_000, b"H")
        thread, result = run_clients(recv_exactly, client, 200_001)
        events = pump(be, lambda evs: not thread.is_alive() and _sent(evs, fd))
        assert len(result.get("value", b"")) == 200_001
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            events += be.wait(0.05)
        assert not _errors(events, fd)
        assert not [e for e in events if e[0] == EV_DATA]
        client.sendall(b"next request")
        events = pump(be, lambda evs: any(e[0] == EV_DATA for e in evs))
        assert [e[2] for e in events if e[0] == EV_DATA] == [b"next request"]
        assert not _errors(events, fd)
    be.close(fd)


def test_zero_count_sends_the_head_alone(be, listener, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    fd, client = accept_one(be, listener)
    with client, open(path, "rb") as f:
        be.sendfile(fd, f.fileno(), 0, 0, b"HEAD only")
        thread, result = run_clients(recv_exactly, client, 9)
        events = pump(be, lambda evs: not thread.is_alive() and _sent(evs, fd))
        assert result.get("value") == b"HEAD only"
        assert _sent(events, fd) == [9]
    be.close(fd)


@pytest.mark.parametrize("io", BACKENDS)
def test_no_descriptor_leak_with_files(io, tmp_path):
    """Transfers done at once, done from the loop, failed by a reset and
    cut by close() leave no descriptor behind (the backends duplicate a
    file only for a transfer left to finish)."""
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(1 << 20))
    before = _fd_count()
    be = open_backend(io)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.setblocking(False)
    file_fd = os.open(path, os.O_RDONLY)
    try:
        for i in range(12):
            fd, client = (_tiny_buffers(be, lsock) if i % 2
                          else accept_one(be, lsock))
            be.sendfile(fd, file_fd, 0, 1 << 20, b"H")
            early = be.wait(0.01)
            if i % 4 == 3:  # cut by close() mid-file
                be.close(fd)
                client.close()
                continue
            if i % 4 == 1:  # reset by the peer mid-file
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
                client.close()
                pump(be, lambda evs, fd=fd, e=early: _errors(e + evs, fd)
                     or _sent(e + evs, fd))
                be.close(fd)
                continue
            thread, result = run_clients(recv_exactly, client, (1 << 20) + 1)
            pump(be, lambda evs, fd=fd, t=thread, e=early: not t.is_alive()
                 and _sent(e + evs, fd))
            assert len(result.get("value", b"")) == (1 << 20) + 1
            be.close(fd)
            client.close()
        # One left mid-file for shutdown() to clean up.
        fd, client = _tiny_buffers(be, lsock)
        be.sendfile(fd, file_fd, 0, 1 << 20, b"H")
        be.wait(0.01)
    finally:
        os.close(file_fd)
        be.shutdown()
        lsock.close()
    client.close()
    assert _fd_count() == before


def _uring_usable() -> bool:
    try:
        from askr.uring.probe import probe

        return probe()["usable"]
    except (ImportError, OSError):
        return False


@pytest.mark.skipif(not _uring_usable(), reason="io_uring unusable")
@pytest.mark.parametrize("forget", [(), ("cancel_fd",)], ids=["cancel_fd", "per_op"])
def test_uring_close_cancels_a_file_waiting_for_room(forget, tmp_path):
    """A file transfer stalled on a full socket is a POLLOUT poll in the
    ring (plus the recv): close() cancels both, with one cancel-by-fd or,
    before 5.19, one cancel per operation, and the shim closes its
    duplicate of the file."""
    from askr.uring.ring import UringBackend

    path = tmp_path / "f.bin"
    path.write_bytes(b"p" * (8 << 20))
    be = UringBackend(forget=forget)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.setblocking(False)
    try:
        fd, client = _tiny_buffers(be, lsock)
        be.watch(fd)
        before = _fd_count()
        with open(path, "rb") as f:
            be.sendfile(fd, f.fileno(), 0, 8 << 20, b"HEAD")
        be.wait(0.1)
        assert be._lib.askr_inflight(be._ring, fd) == 2
        assert be.stats()["partial_sends"] >= 1
        assert _fd_count() == before + 1  # the shim's duplicate
        start = time.monotonic()
        be.close(fd)
        assert time.monotonic() - start < 1.0
        assert be.stats().get("stuck_closes", 0) == 0
        assert _fd_count() == before - 1  # and the socket
        client.close()
    finally:
        be.shutdown()
        lsock.close()
