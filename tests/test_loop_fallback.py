"""io="auto" falls back to epoll when io_uring is denied, and says why.

The denial is real: a child process installs a seccomp filter that makes
io_uring_setup/enter/register fail with EPERM (as container runtimes do),
then opens a backend.  The probe facts used by ``askr doctor`` are checked
here too.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from askr.uring.probe import probe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import ctypes, json, logging, sys

# struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}: deny the three
# io_uring system calls (x86_64: 425, 426, 427) with EPERM, allow the rest.
class Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

LD_ABS, JEQ, RET = 0x20, 0x15, 0x06
EPERM_RET, ALLOW = 0x00050000 | 1, 0x7FFF0000
program = [
    (LD_ABS, 0, 0, 4), (JEQ, 0, 5, 0xC000003E),   # arch x86_64, else allow
    (LD_ABS, 0, 0, 0),                             # syscall number
    (JEQ, 2, 0, 425), (JEQ, 1, 0, 426), (JEQ, 0, 1, 427),
    (RET, 0, 0, EPERM_RET), (RET, 0, 0, ALLOW),
]
filters = (Filter * len(program))(*[Filter(*ins) for ins in program])
prog = Prog(len(program), filters)
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0              # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # SECCOMP_MODE_FILTER

logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(levelname)s %(name)s %(message)s")
from askr.uring import open_backend
from askr.uring.probe import probe

facts = probe()
be = open_backend("auto")
try:
    open_backend("uring")
    forced = "opened"
except OSError as exc:
    forced = str(exc)
print(json.dumps({"name": be.name, "reason": be.reason, "usable": facts["usable"],
                  "setup_ok": facts["setup_ok"], "setup_errno": facts["setup_errno"],
                  "forced": forced}))
be.shutdown()
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="filter is x86_64 only")
def test_auto_picks_epoll_when_io_uring_is_denied():
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=ROOT),
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["name"] == "epoll"
    assert result["usable"] is False
    assert result["setup_ok"] is False
    assert result["setup_errno"] == 1  # EPERM
    assert "EPERM" in result["reason"]
    assert "opened" not in result["forced"]

    logged = [line for line in out.stderr.splitlines() if "backend epoll" in line]
    assert len(logged) == 1, out.stderr
    assert logged[0].startswith("WARNING askr.uring")
    assert "EPERM" in logged[0]


def test_probe_reports_facts_for_doctor():
    facts = probe()
    assert set(facts) >= {
        "kernel",
        "io_uring_disabled",
        "setup_ok",
        "setup_errno",
        "flags",
        "ops",
        "features",
        "memlock",
        "usable",
        "reason",
    }
    assert facts["kernel"] == platform.release()
    assert isinstance(facts["memlock"], int)
    assert facts["reason"]
    if facts["usable"]:
        assert facts["setup_ok"] and facts["setup_errno"] is None
        assert all(
            facts["ops"][op] for op in ("ACCEPT", "RECV", "SEND", "ASYNC_CANCEL")
        )
        assert {"SINGLE_ISSUER", "COOP_TASKRUN", "DEFER_TASKRUN"} <= set(facts["flags"])
        assert {"multishot_accept", "buf_ring"} <= set(facts["features"])


def test_open_backend_logs_once_through_the_given_callable():
    from askr.uring import open_backend

    lines = []
    be = open_backend("epoll", log=lambda level, msg: lines.append((level, msg)))
    try:
        assert be.name == "epoll"
        assert be.reason == "io=epoll requested"
        assert lines == [(20, "askr.uring: backend epoll (io=epoll requested)")]
    finally:
        be.shutdown()


def test_unknown_io_value_is_refused():
    from askr.uring import open_backend

    with pytest.raises(ValueError):
        open_backend("kqueue")
