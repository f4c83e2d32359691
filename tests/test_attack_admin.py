"""Hostile input on the admin listener, which runs inside the master's
loop: nothing a client sends may take the master down."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def srv(askr_factory, tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "a.txt").write_text("a\n")
    return askr_factory({"server": {"root": str(tmp_path / "public")}})


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_admin_upgrade_and_connect_get_400_and_master_survives(srv):
    upgrade = (b"GET /api/status HTTP/1.1\r\nHost: x\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    for req in (upgrade,
                b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n"):
        out = _raw(srv.admin_port, req)
        assert out.startswith(b"HTTP/1.1 400 "), out
        assert srv.proc.poll() is None, srv.log()[-2000:]
    assert srv.log().count("admin request refused: protocol upgrade") == 2
    assert srv.status()["workers"]
    assert srv.get("/a.txt")[0] == 200


def test_admin_pipelined_requests_answer_the_first_only(srv):
    out = _raw(srv.admin_port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
    assert out.startswith(b"HTTP/1.1 200 "), out
    assert out.count(b"HTTP/1.1") == 1
    # The second request's URL is not glued onto the first one's, nor does
    # its method replace the first one's.
    out = _raw(srv.admin_port, b"GET /api/reload? HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405 "), out
    assert "reload started" not in srv.log()
