"""HTTP/2 request bodies obey the same limits as HTTP/1.1 ones:
max_body_size (413, the stream refused, the connection kept) and
body_timeout (a stream whose body stops coming is refused with 408
instead of holding the connection for ever)."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def srv(askr_factory, tmp_path):
    root = tmp_path / "docroot"
    shutil.copytree(HERE / "docroot_http", root)
    return askr_factory({"server": {
        "root": str(root), "max_body_size": "64K", "body_timeout": 1,
        "keepalive_timeout": 30}})


def _client(port: int):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _headers(path: str, method: str = "GET", extra=()):
    return [(":method", method), (":path", path), (":scheme", "http"),
            (":authority", "x"), *extra]


def _until_stream_done(sock, conn, sid: int, limit: float = 10.0) -> dict:
    """Read until ``sid`` has a response and ended or was reset."""
    got = {"status": None, "data": b"", "reset": False, "ended": False}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not (got["ended"] or got["reset"]):
        chunk = sock.recv(65536)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if getattr(ev, "stream_id", None) != sid:
                continue
            if isinstance(ev, h2.events.ResponseReceived):
                got["status"] = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                got["data"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                got["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                got["reset"] = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    return got


def _next_request_works(sock, conn, sid: int) -> None:
    conn.send_headers(sid, _headers("/file.txt"), end_stream=True)
    sock.sendall(conn.data_to_send())
    assert _until_stream_done(sock, conn, sid)["status"] == 200


def test_h2_body_over_max_body_size_gets_413_and_connection_serves_next(srv):
    sock, conn = _client(srv.port)
    with sock:
        conn.send_headers(1, _headers("/echo_body.php", "POST"))
        sock.sendall(conn.data_to_send())
        sock.settimeout(0.05)
        sent = 0
        for _ in range(400):  # bounded: 400 x <=16 KiB, far over 64K
            try:
                window = conn.local_flow_control_window(1)
            except Exception:  # noqa: BLE001 - the stream was closed by then
                break
            if window > 0:
                size = min(window, 16384)
                conn.send_data(1, b"a" * size)
                sent += size
                sock.sendall(conn.data_to_send())
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            events = conn.receive_data(chunk)
            sock.sendall(conn.data_to_send())
            if any(isinstance(e, (h2.events.ResponseReceived,
                                  h2.events.StreamReset)) for e in events):
                statuses = [int(dict(e.headers)[b":status"]) for e in events
                            if isinstance(e, h2.events.ResponseReceived)]
                assert statuses == [413]
                break
        else:
            pytest.fail(f"no 413 after {sent} bytes")
        sock.settimeout(10)
        _next_request_works(sock, conn, 3)
    srv.wait_log(r"stream 1: 413 request body too large")
    assert srv.proc.poll() is None


def test_h2_content_length_over_limit_refused_before_the_body(srv):
    sock, conn = _client(srv.port)
    with sock:
        conn.send_headers(1, _headers("/echo_body.php", "POST",
                                      [("content-length", "10000000")]))
        sock.sendall(conn.data_to_send())
        got = _until_stream_done(sock, conn, 1)
        assert got["status"] == 413
        _next_request_works(sock, conn, 3)


def test_h2_stalled_request_body_times_out_with_408(srv):
    sock, conn = _client(srv.port)
    with sock:
        conn.send_headers(1, _headers("/echo_body.php", "POST",
                                      [("content-length", "10")]))
        conn.send_data(1, b"ab")
        sock.sendall(conn.data_to_send())
        started = time.monotonic()
        got = _until_stream_done(sock, conn, 1, limit=8)
        assert got["status"] == 408, got
        assert time.monotonic() - started < 6
        _next_request_works(sock, conn, 3)
    srv.wait_log(r"stream 1: body timeout")
