"""Static files through a real askr master, on io_uring and on epoll.

The worker sends a static response as head + file range from the loop
(sendfile(2) in the shim, or os.sendfile on epoll) and keeps the file's
descriptor open between requests while the file is unchanged (OpenFiles
in askr/connection.py).  These tests check that a file replaced, rewritten
or deleted on disk is never served stale, that kept descriptors of unused
files are closed, that a file too big for the
socket buffers reaches a slow reader whole, that one which shrinks while
it is sent cuts the connection, and that the kept descriptors stay
bounded.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from askr_server import AskrServer, read_response
from loop_support import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"static-{request.param}")
    root = work / "docroot"
    root.mkdir()
    srv = AskrServer(work, {"server": {"root": str(root), "workers": 1,
                                       "io": request.param}})
    srv.root = root
    srv.start()
    yield srv
    srv.stop()


def _get(sock, target: str, headers: str = "") -> tuple[int, dict, bytes]:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
    status, hdrs, body, rest = read_response(sock)
    assert rest == b""
    return status, hdrs, body


def _worker_fds(srv) -> list[str]:
    (pid,) = srv.worker_pids()
    out = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return out


def test_replaced_file_is_served_fresh_on_the_same_connection(server):
    """Deploy-style replacement (write aside, rename over) with the same
    size and mtime as the old file: a new inode, so a new descriptor."""
    path = server.root / "app.js"
    path.write_bytes(b"A" * 5000)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    with server.connect() as sock:
        status, hdrs, body = _get(sock, "/app.js")
        assert (status, body) == (200, b"A" * 5000)
        old_etag = hdrs["etag"]
        for letter in b"BCD":
            tmp = server.root / ".app.js.new"
            tmp.write_bytes(bytes([letter]) * 5000)
            os.utime(tmp, (1_700_000_000, 1_700_000_000))
            os.rename(tmp, path)
            status, hdrs, body = _get(sock, "/app.js")
            assert (status, body) == (200, bytes([letter]) * 5000)
            assert hdrs["etag"] == old_etag  # same size and mtime


def test_file_rewritten_in_place_is_served_fresh(server):
    path = server.root / "data.txt"
    path.write_bytes(b"first version\n")
    with server.connect() as sock:
        assert _get(sock, "/data.txt")[2] == b"first version\n"
        with open(path, "r+b") as f:  # same inode, same size
            f.write(b"other version\n")
        assert _get(sock, "/data.txt")[2] == b"other version\n"
        path.write_bytes(b"a longer third version\n")  # truncate + write
        _, hdrs, body = _get(sock, "/data.txt")
        assert body == b"a longer third version\n"
        assert hdrs["content-length"] == [str(len(body))]


def test_deleted_file_is_not_served(server):
    path = server.root / "gone.css"
    path.write_bytes(b"body{}" * 1000)
    with server.connect() as sock:
        assert _get(sock, "/gone.css")[0] == 200
        assert any(p.endswith("/gone.css") for p in _worker_fds(server))
        path.unlink()
        assert _get(sock, "/gone.css")[0] == 404
        path.write_bytes(b"p{}")
        assert _get(sock, "/gone.css")[2] == b"p{}"


def test_open_files_reuse_check_and_idle_close(tmp_path):
    """OpenFiles alone: reuse while the stat matches, reopen on any
    change, close what went unused for OPEN_FILES_IDLE (a deleted file's
    space comes back), and never keep more than OPEN_FILES_MAX."""
    from askr.connection import OPEN_FILES_IDLE, OPEN_FILES_MAX, OpenFiles

    def open_count():
        return len(os.listdir("/proc/self/fd"))

    files = OpenFiles()
    path = tmp_path / "a.txt"
    path.write_bytes(b"one")
    before = open_count()
    fd = files.get(str(path), os.stat(path), 100.0)
    assert files.get(str(path), os.stat(path), 101.0) == fd
    assert open_count() == before + 1
    os.chmod(path, 0o600)  # ctime moves: reopened, the old one closed
    st = os.stat(path)
    fd2 = files.get(str(path), st, 102.0)
    assert files.fds[str(path)][1][4] == st.st_ctime_ns
    assert os.pread(fd2, 10, 0) == b"one"
    assert open_count() == before + 1
    path.unlink()
    assert files.get(str(path), st, 103.0) == fd2  # stat taken before
    files.sweep(103.0 + OPEN_FILES_IDLE - 1)
    os.fstat(fd2)  # still open
    files.sweep(103.0 + OPEN_FILES_IDLE)
    with pytest.raises(OSError):
        os.fstat(fd2)
    assert files.fds == {}

    for i in range(OPEN_FILES_MAX + 5):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x")
        files.get(str(p), os.stat(p), 200.0 + i)
    assert len(files.fds) == OPEN_FILES_MAX
    assert str(tmp_path / "f0") not in files.fds  # the least recently used
    files.close()
    assert files.fds == {}


def test_kept_descriptors_are_bounded(server):
    many = server.root / "many"
    many.mkdir(exist_ok=True)
    with server.connect() as sock:
        for i in range(100):
            (many / f"f{i}.txt").write_bytes(b"%d" % i)
            assert _get(sock, f"/many/f{i}.txt")[2] == b"%d" % i
    kept = [p for p in _worker_fds(server) if "/many/" in p]
    assert 0 < len(kept) <= 64


def test_big_file_reaches_a_slow_reader_whole(server):
    """8 MiB through a 4 KiB receive buffer, read slowly: the transfer
    waits for room many times (POLLOUT / EPOLLOUT) and arrives whole, then
    a Range and a conditional request on the same connection."""
    data = os.urandom(8 << 20)
    (server.root / "big.bin").write_bytes(data)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)  # the server fills the socket and waits
        status, hdrs, body, _ = read_response(sock, timeout=30)
        assert status == 200
        assert body == data
        status, hdrs, body = _get(sock, "/big.bin", "Range: bytes=1000-1999\r\n")
        assert (status, body) == (206, data[1000:2000])
        status, _, body = _get(sock, "/big.bin",
                               f"If-None-Match: {hdrs['etag'][0]}\r\n")
        assert (status, body) == (304, b"")


def test_file_shrinking_while_sent_cuts_the_connection(server):
    path = server.root / "shrinks.bin"
    path.write_bytes(b"s" * (16 << 20))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(b"GET /shrinks.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)
        os.truncate(path, 1000)
        sock.settimeout(10)
        got = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % (16 << 20) in head
        assert len(body) < 16 << 20  # cut, never padded or hung
    # The worker serves on.
    with server.connect() as other:
        assert _get(other, "/shrinks.bin")[2] == b"s" * 1000


def test_head_and_empty_file(server):
    (server.root / "empty.txt").write_bytes(b"")
    (server.root / "some.txt").write_bytes(b"0123456789")
    with server.connect() as sock:
        status, hdrs, body = _get(sock, "/empty.txt")
        assert (status, body, hdrs["content-length"]) == (200, b"", ["0"])
        sock.sendall(b"HEAD /some.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        status, hdrs, body, _ = read_response(sock, head_only=True)
        assert status == 200 and hdrs["content-length"] == ["10"]
        assert _get(sock, "/some.txt")[2] == b"0123456789"
