"""The kernel matrix's own logic: apt sources, module order, results, table.

The matrix itself boots VMs and is not part of the suite; these tests only
prove that what it reads (apt config, modules.dep, guest.sh's output
files, pytest's JUnit XML) turns into the right rows of RESULTS.md.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KM = ROOT / "kernel-matrix"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"km_{name}", KM / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matrix = _load("matrix")
no_uring = _load("no_uring")

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="3"
 tests="10" time="1.0">
<testcase classname="t" name="test_a[uring]"><failure message="x"/></testcase>
<testcase classname="t" name="test_b[epoll]"><error message="y"/></testcase>
<testcase classname="t" name="test_c"/>
</testsuite></testsuites>
"""

PROBE = {
    "kernel": "5.10.0-46-amd64",
    "usable": True,
    "reason": "io_uring usable",
    "setup_ok": True,
    "flags": {"SINGLE_ISSUER": False, "COOP_TASKRUN": False},
    "ops": {"ACCEPT": True, "SEND_ZC": False},
    "features": {"multishot_accept": False, "buf_ring": True},
}


def test_sources_deb822_and_one_line(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n# a comment: here\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert matrix.apt_mirrors([str(deb822)]) == (
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    )

    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "deb [arch=amd64] http://m.example/debian bookworm main\n"
        "deb https://other.example/apt cloud main\n"
    )
    assert matrix.apt_mirrors([str(one_line)]) == (
        "http://m.example/debian",
        "http://m.example/debian-security",
    )


def test_sources_without_debian_is_an_error(tmp_path):
    path = tmp_path / "x.list"
    path.write_text("deb https://other.example/apt cloud main\n")
    with pytest.raises(SystemExit):
        matrix.apt_mirrors([str(path)])


def test_module_order_puts_dependencies_first():
    dep = (
        "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/net/9p/9pnet.ko.xz:\n"
        "kernel/fs/netfs/netfs.ko.xz:\n"
        "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz "
        "kernel/drivers/virtio/virtio_ring.ko.xz\n"
        "kernel/drivers/virtio/virtio_ring.ko.xz:\n"
    )
    order = matrix.module_order(dep, ("virtio_pci", "9pnet_virtio", "9p"))
    names = [matrix._module_name(p) for p in order]
    # virtio_pci is built in (absent from modules.dep): skipped, not an error.
    assert sorted(names) == ["9p", "9pnet", "9pnet_virtio", "netfs", "virtio_ring"]
    assert len(names) == len(set(names))
    assert names.index("9pnet") < names.index("9pnet_virtio")
    assert names.index("virtio_ring") < names.index("9pnet_virtio")
    assert names.index("netfs") < names.index("9p")


def test_junit_counts_and_failed_names():
    counts = matrix.junit_counts(JUNIT)
    assert counts["passed"] == 5
    assert (counts["failed"], counts["errors"], counts["skipped"]) == (1, 1, 3)
    assert counts["failed_names"] == ["t::test_a[uring]", "t::test_b[epoll]"]
    assert counts["failed_messages"]["t::test_a[uring]"] == "x"


def _cell(tmp_path: Path, probe: dict, backend: str, junit: str) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "uname.txt").write_text("5.10.0-46-amd64\n")
    (out / "disable.txt").write_text("seccomp\n")
    (out / "doctor.json").write_text(
        json.dumps({"ok": True, "facts": {"uring": probe}})
    )
    (out / "backend.json").write_text(json.dumps({"name": backend, "reason": "r"}))
    (out / "junit.xml").write_text(junit)
    (out / "finished").write_text("done\n")
    return out


def test_collect_and_render_a_row(tmp_path):
    result = matrix.collect(_cell(tmp_path, PROBE, "uring", JUNIT))
    result.update(kernel="bullseye", debian_version="5.10", mode="on", how="qemu TCG")
    assert result["finished"] and result["backend"]["name"] == "uring"

    table = matrix.render([result])
    row = next(line for line in table.splitlines() if "bullseye" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "bullseye 5.10.0-46-amd64"
    assert cells[1] == "on"
    assert cells[2] == "yes"
    assert cells[3] == "provided-buffer rings"
    assert "multishot accept" in cells[4] and "flag SINGLE_ISSUER" in cells[4]
    assert "op SEND_ZC" in cells[4]
    assert cells[5] == "uring"
    assert cells[6] == "5 / 2 / 3"
    assert "`t::test_a[uring]`: x" in table


def test_off_row_names_how_and_unusable_reason(tmp_path):
    probe = dict(PROBE, usable=False, setup_ok=False, reason="ENOSYS")
    result = matrix.collect(_cell(tmp_path, probe, "epoll", JUNIT))
    result.update(kernel="bullseye", debian_version="5.10", mode="off", how="x")
    cells = matrix._row(result)
    assert cells[1] == "off (seccomp)"
    assert cells[2] == "no: ENOSYS"
    assert cells[3] == "-" and cells[4] == "(no ring)"
    assert cells[5] == "epoll"


def test_a_vm_that_never_ran_the_cell_is_reported_not_invented(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = matrix.collect(out)
    result.update(kernel="trixie", debian_version="6.12", mode="on", how="qemu")
    cells = matrix._row(result)
    assert cells[0] == "trixie did not boot"
    assert cells[6] == "not run"
    assert not matrix._cell_ok(result)


def test_cell_ok_demands_epoll_when_io_uring_is_off():
    tests = {"passed": 3, "failed": 0, "errors": 0, "skipped": 1}
    good = {"mode": "off", "tests": tests, "backend": {"name": "epoll"}}
    assert matrix._cell_ok(good)
    assert not matrix._cell_ok(dict(good, backend={"name": "uring"}))
    assert matrix._cell_ok(dict(good, mode="on", backend={"name": "uring"}))


def test_parse_kernels_aliases_and_unknown():
    assert matrix.parse_kernels([]) == ["bullseye", "bookworm", "trixie", "host"]
    assert matrix.parse_kernels(["6.12", "host"]) == ["trixie", "host"]
    with pytest.raises(SystemExit):
        matrix.parse_kernels(["4.19"])


def test_seccomp_program_jumps_land_on_returns():
    prog = no_uring.program(errno.ENOSYS)
    for i, (code, jt, jf, _k) in enumerate(prog):
        if code == no_uring.JEQ_K:
            for target in (i + 1 + jt, i + 1 + jf):
                assert 0 <= target < len(prog)
    assert prog[-1][3] == no_uring.SECCOMP_RET_ALLOW
    assert prog[-2][3] == no_uring.SECCOMP_RET_ERRNO | errno.ENOSYS


def test_seccomp_wrapper_denies_io_uring_setup_only():
    script = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        "rc = libc.syscall(425, 4, params)\n"
        "print(rc, ctypes.get_errno(), os.getpid() > 0)\n"
    )
    wrapper = [sys.executable, str(KM / "no_uring.py"), "--errno", "EPERM"]
    out = subprocess.run(
        [*wrapper, sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert out == ["-1", str(errno.EPERM), "True"]
