"""fastcgi_finish_request() through a real askr master: the client has
its whole response while the script keeps running, as with php-fpm."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from askr_server import AskrServer, read_response, tls_section

SCRIPT = """<?php
header('X-Before: finish');
echo 'answered';
fastcgi_finish_request();
sleep(2);
file_put_contents(__DIR__ . '/after.txt', 'ran-after-finish');
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-finish")
    root = work / "docroot"
    root.mkdir()
    (root / "finish.php").write_text(SCRIPT)
    # One worker: the finished script still occupies it for 2 s.
    srv = AskrServer(work, {
        "server": {"root": str(root), "workers": 1},
        "tls": tls_section(work),
    })
    srv.root = root
    srv.start()
    yield srv
    srv.stop()


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text()


def test_http1_client_gets_the_response_before_the_script_ends(server):
    (server.root / "after.txt").unlink(missing_ok=True)
    with server.connect() as sock:
        start = time.monotonic()
        sock.sendall(b"GET /finish.php HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body, _ = read_response(sock, timeout=10)
        took = time.monotonic() - start

    assert status == 200 and body == b"answered"
    assert headers["x-before"] == ["finish"]
    assert took < 1.5, f"the response waited for the script: {took:.2f}s"
    assert not (server.root / "after.txt").exists()
    assert wait_for_file(server.root / "after.txt") == "ran-after-finish"


def test_http2_client_gets_the_response_before_the_script_ends(server):
    (server.root / "after.txt").unlink(missing_ok=True)
    start = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "-k", "--http2", "--max-time", "20", "-o", "-",
         "-w", "\\n%{http_version} %{time_total}",
         f"https://127.0.0.1:{server.tls_port}/finish.php"],
        capture_output=True, text=True, timeout=60, check=False)
    took = time.monotonic() - start

    body, _, facts = out.stdout.rpartition("\n")
    assert body == "answered", out
    assert facts.split()[0] == "2"
    assert took < 1.5, f"the response waited for the script: {took:.2f}s"
    assert wait_for_file(server.root / "after.txt") == "ran-after-finish"
