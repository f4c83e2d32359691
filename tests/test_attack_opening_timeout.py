"""A connection that began a TLS handshake or an HTTP/2 preface and then
stalls is closed after header_timeout, not after the (long) keep-alive
timeout."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from askr_server import tls_section

HERE = Path(__file__).resolve().parent


def _closed_after(port: int, data: bytes, limit: float) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(data)
        while s.recv(65536):
            pass
    return time.monotonic() - started


def test_stalled_tls_handshake_and_h2_preface_closed_after_header_timeout(
        askr_factory, tmp_path):
    root = tmp_path / "docroot"
    shutil.copytree(HERE / "docroot_http", root)
    srv = askr_factory({
        "server": {"root": str(root), "header_timeout": 1,
                   "keepalive_timeout": 30},
        "tls": tls_section(tmp_path),
    })
    tls_port = srv.tls_port
    # The first bytes of a ClientHello record, then nothing.
    assert _closed_after(tls_port, b"\x16\x03\x01\x00\xc8\x01\x00", 15) < 6
    # Half of the HTTP/2 connection preface, then nothing.
    assert _closed_after(srv.port, b"PRI * HTTP/2.0\r\n", 15) < 6
    assert srv.get("/file.txt")[0] == 200
