"""A busy worker takes no connections from the shared listen socket.

Two processes share one listener.  The busy one armed an accept, then
called set_accepting(False) (as a worker does before running PHP) and
stops running its loop; the idle one serves.  Every new connection must
reach the idle process, and the busy one must find no accept afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from loop_support import BACKENDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import os, sys, time
from askr.uring import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR, EV_SENT, open_backend

io, role, lfd = sys.argv[1], sys.argv[2], int(sys.argv[3])
be = open_backend(io)
be.add_listener(lfd)
be.set_accepting(True)
be.wait(0)  # the accept is armed and submitted
if role == "busy":
    be.set_accepting(False)
    print("ready", flush=True)
    sys.stdin.readline()  # "running PHP" until the parent says so
    got = [e for e in be.wait(0.2) if e[0] == EV_ACCEPT]
    print(len(got), flush=True)
    sys.exit(0)

print("ready", flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    for kind, fd, value in be.wait(0.5):
        if kind == EV_ACCEPT:
            be.watch(fd)
        elif kind == EV_DATA:
            be.send(fd, str(os.getpid()).encode())
        elif kind in (EV_SENT, EV_EOF, EV_ERROR):
            be.close(fd)
"""


def _start(io, role, lfd):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, io, role, str(lfd)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=[lfd],
        env=dict(os.environ, PYTHONPATH=ROOT),
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize(
    "io",
    BACKENDS,
)
def test_busy_process_gets_no_connections(io):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    procs = []
    try:
        busy = _start(io, "busy", listener.fileno())
        procs.append(busy)
        idle = _start(io, "idle", listener.fileno())
        procs.append(idle)

        served_by = []
        for _ in range(20):
            with socket.create_connection(listener.getsockname(), timeout=5) as c:
                c.sendall(b"who")
                served_by.append(int(c.recv(32)))
        assert served_by == [idle.pid] * 20

        busy.stdin.write("done\n")
        busy.stdin.flush()
        assert busy.stdout.readline().strip() == "0"
        assert busy.wait(10) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        listener.close()
