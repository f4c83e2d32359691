"""Out of descriptors: the loop logs, pauses accepting, and recovers.

A child process serves with RLIMIT_NOFILE lowered to a handful above what
it already uses; twenty clients connect at once.  Accepts fail with EMFILE
until clients are answered and closed, then the queued ones are served.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time

import pytest
from loop_support import BACKENDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import logging, os, resource, socket, sys, time
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from askr.uring import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR, open_backend

be = open_backend(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(128)
ls.setblocking(False)
be.add_listener(ls.fileno())
be.set_accepting(True)
be.wait(0)
in_use = len(os.listdir("/proc/self/fd"))
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 4, hard))
print(ls.getsockname()[1], flush=True)

deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    for kind, fd, value in be.wait(0.5):
        if kind == EV_ACCEPT:
            be.watch(fd)
        elif kind == EV_DATA:
            be.send(fd, b"ok")
        elif kind in (EV_EOF, EV_ERROR):
            be.close(fd)
"""


@pytest.mark.parametrize(
    "io",
    BACKENDS,
)
def test_emfile_pauses_accepts_and_recovers(io):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, io],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines = []
    emfile_seen = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "EMFILE" in line:
                emfile_seen.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    clients = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"x")
            clients.append(c)

        # Nothing is closed until the server has run out of descriptors.
        assert emfile_seen.wait(10), "no EMFILE logged: " + "".join(lines)

        answered = 0
        waiting = list(clients)
        deadline = time.monotonic() + 20
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(waiting, [], [], 0.5)
            for c in ready:
                assert c.recv(2) == b"ok"
                answered += 1
                waiting.remove(c)
                c.close()
        assert answered == 20
        assert proc.poll() is None, "server died"
    finally:
        for c in clients:
            c.close()
        proc.kill()
        proc.wait(10)
        reader.join(10)
    assert any("pausing accepts" in line for line in lines)
