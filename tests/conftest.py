"""Shared fixtures: a real askr master on loopback, built per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "php_stubs"))
sys.path.insert(0, str(TOP))

from askr_server import AskrServer
from loop_support import BACKENDS


@pytest.fixture
def askr_factory(tmp_path):
    """Start masters with ``askr_factory(sections)``; all are stopped at
    the end of the test, whatever happened."""
    servers: list[AskrServer] = []

    def start(sections: dict, **kw) -> AskrServer:
        server = AskrServer(tmp_path, sections, **kw)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


# The event-loop tests' backend and listening socket (tests/test_loop_*).

@pytest.fixture(params=BACKENDS)
def be(request):
    from askr.uring import open_backend

    backend = open_backend(request.param)
    assert backend.name == request.param
    try:
        yield backend
    finally:
        backend.shutdown()


@pytest.fixture
def listener():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()
