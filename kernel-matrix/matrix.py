"""Askr's kernel matrix: doctor and the event-loop tests on several kernels.

Theory of operation.  Each Debian kernel (bullseye 5.10, bookworm 6.1,
trixie 6.12) is fetched with ``apt-get download`` through a private apt
configuration whose sources name the mirror that this machine's own apt
configuration uses (read at run time, so no host name is written here).
The package is unpacked with ``dpkg-deb -x``; a small initramfs is built
from busybox-static plus the kernel's own virtio and 9p modules (in
dependency order from ``depmod``).  qemu boots it with KVM when /dev/kvm
is usable (TCG emulation otherwise), the init script mounts the host's
root file system read-only over 9p, chroots into it and runs guest.sh, so
the VM runs the host's Python, venv and the project exactly as built here.
guest.sh writes its outputs into a second, writable 9p share; the host
then turns them into results/<kernel>-<mode>.json and RESULTS.md.

Every kernel runs twice: io_uring on, and io_uring off (the
kernel.io_uring_disabled=2 knob where the kernel has it, 6.6+; a seccomp
filter denying io_uring_setup otherwise) to prove the epoll fallback.

The "host" kernel is the running one, tested directly without a VM; its
"off" cell always uses the seccomp filter, because flipping the sysctl on a
shared machine would change every other process on it.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

logger = logging.getLogger("kernel-matrix")

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
CACHE = HERE / "cache"
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"

# Name on the command line -> Debian suite holding that kernel.
KERNELS = {"bullseye": "5.10", "bookworm": "6.1", "trixie": "6.12", "host": None}
ALIASES = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "trixie"}
MODES = ("on", "off")

# Modules the init needs to reach the host's files; anything built in is
# simply absent from modules.dep and skipped.
WANT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")

VM_MEMORY_MB = 2048
VM_TIMEOUT_S = 1800

FEATURE_LABELS = {
    "multishot_accept": "multishot accept",
    "multishot_recv": "multishot recv",
    "buf_ring": "provided-buffer rings",
    "ext_arg": "ext_arg",
    "fast_poll": "fast poll",
    "nodrop": "nodrop",
}


# ---------------------------------------------------------------- apt


def apt_mirrors(paths: list[str] | None = None) -> tuple[str, str]:
    """The Debian archive and security URIs this machine's apt uses."""
    if paths is None:
        paths = ["/etc/apt/sources.list"] + sorted(
            glob.glob("/etc/apt/sources.list.d/*.list")
            + glob.glob("/etc/apt/sources.list.d/*.sources")
        )
    pairs: list[tuple[str, str]] = []  # (uri, suite)
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (
                        line.partition(":")
                        for line in stanza.splitlines()
                        if ":" in line and not line.lstrip().startswith("#")
                    )
                }
                if "deb" not in fields.get("types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        pairs.append((uri, suite))
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb":
                    pairs.append((words[1], words[2]))

    debian = [(u, s) for u, s in pairs if "debian" in u]
    main = next((u for u, s in debian if not s.endswith("-security")), None)
    security = next((u for u, s in debian if s.endswith("-security")), None)
    if main is None:
        raise SystemExit("no Debian archive found in this machine's apt sources")
    if security is None:
        security = main.rstrip("/") + "-security"
    return main.rstrip("/"), security.rstrip("/")


def _apt_options(state: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::sourcelist={state / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=/nonexistent",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip


def fetch(suite: str) -> Path:
    """Download and unpack the suite's current amd64 kernel; its directory."""
    kdir = CACHE / suite
    state = CACHE / "apt" / suite
    done = kdir / "unpacked"
    if done.exists():
        return kdir

    main, security = apt_mirrors()
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(
        f"deb {main} {suite} main\ndeb {security} {suite}-security main\n"
    )
    opts = _apt_options(state)
    logger.info("kernel-matrix: apt update for %s", suite)
    subprocess.run(
        ["apt-get", *opts, "-q", "update"], check=True, stdout=subprocess.DEVNULL
    )

    deps = subprocess.run(
        ["apt-cache", *opts, "depends", "linux-image-amd64"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Depends: (linux-image-\S+)", deps)
    if not match:
        raise SystemExit(f"{suite}: linux-image-amd64 names no kernel:\n{deps}")
    package = match.group(1)

    kdir.mkdir(parents=True, exist_ok=True)
    for old in kdir.glob("*.deb"):
        old.unlink()
    logger.info("kernel-matrix: downloading %s (%s)", package, suite)
    subprocess.run(
        ["apt-get", *opts, "-q", "download", package],
        check=True,
        cwd=kdir,
        stdout=subprocess.DEVNULL,
    )
    deb = next(kdir.glob("*.deb"))

    root = kdir / "root"
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    # trixie's kernel ships under usr/lib (merged /usr); depmod looks in lib/.
    if not (root / "lib").exists() and (root / "usr" / "lib").exists():
        (root / "lib").symlink_to("usr/lib")
    version = kernel_version(root)
    subprocess.run(["depmod", "-b", str(root), version], check=True)
    done.write_text(f"{package}\n{deb.name}\n")
    return kdir


def kernel_version(root: Path) -> str:
    mods = sorted(p.name for p in (root / "lib" / "modules").iterdir())
    if len(mods) != 1:
        raise SystemExit(f"{root}: expected one modules tree, found {mods}")
    return mods[0]


# ---------------------------------------------------------------- initramfs


def module_order(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Module files to load, dependencies first, for the wanted names."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[_module_name(path)] = path

    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is not None:
            visit(path)
    return order


def _module_name(path: str) -> str:
    base = os.path.basename(path)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "km: init on $(uname -r)"
for m in $(cat /modules.order); do
    insmod "/mods/$m" || echo "km: insmod $m failed"
done
mode=on
nofile=20000
for w in $(cat /proc/cmdline); do
    case "$w" in
    km.mode=*) mode=${w#km.mode=} ;;
    km.nofile=*) nofile=${w#km.nofile=} ;;
    esac
done
ip link set lo up || echo "km: no loopback"
h=/host
mkdir -p $h
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 \
    hostroot $h || { echo "km: cannot mount host root"; poweroff -f; }
mount -t proc proc $h/proc
mount -t sysfs sysfs $h/sys
mount -t devtmpfs devtmpfs $h/dev
mkdir -p $h/dev/pts $h/dev/shm
mount -t devpts devpts $h/dev/pts
mount -t tmpfs tmpfs $h/dev/shm
mount -t tmpfs tmpfs $h/tmp
mount -t tmpfs tmpfs $h/run
mkdir -p $h/tmp/km-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 kmout $h/tmp/km-out \
    || { echo "km: cannot mount the output share"; poweroff -f; }
echo "km: running the cell (io_uring $mode)"
KM_IN_VM=1 KM_NOFILE=$nofile chroot $h /bin/sh @GUEST@ /tmp/km-out "$mode"
echo "km: cell finished rc=$?"
sync
umount $h/tmp/km-out
poweroff -f
"""


def build_initrd(kdir: Path) -> Path:
    """An initramfs with busybox, the 9p/virtio modules and our init."""
    root = kdir / "root"
    version = kernel_version(root)
    init = INIT.replace("@GUEST@", str(HERE / "guest.sh"))
    # Named after its init script, so an edited init is never served stale.
    digest = hashlib.sha256(init.encode()).hexdigest()[:12]
    initrd = kdir / f"initrd-{digest}.gz"
    if initrd.exists():
        return initrd
    for old in kdir.glob("initrd-*.gz"):
        old.unlink()
    busybox = shutil.which("busybox") or "/bin/busybox"
    check = subprocess.run(
        ["file", "-L", busybox], check=False, capture_output=True, text=True
    )
    if "dynamically" in check.stdout:
        raise SystemExit("busybox must be static: apt-get install busybox-static")

    modroot = root / "lib" / "modules" / version
    order = module_order((modroot / "modules.dep").read_text(), WANT_MODULES)

    with tempfile.TemporaryDirectory(prefix="km-initrd-") as tmp:
        stage = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "mods", "host"):
            (stage / d).mkdir()
        shutil.copy2(busybox, stage / "bin" / "busybox")
        names = []
        for rel in order:
            src = modroot / rel
            name = _module_name(rel) + ".ko"
            _decompress(src, stage / "mods" / name)
            names.append(name)
        (stage / "modules.order").write_text("\n".join(names) + "\n")
        (stage / "init").write_text(init)
        (stage / "init").chmod(0o755)
        listing = subprocess.run(
            ["find", "."], cwd=stage, check=True, capture_output=True
        ).stdout
        cpio = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            cwd=stage,
            input=listing,
            check=True,
            capture_output=True,
        ).stdout
    initrd.write_bytes(gzip.compress(cpio, 6))
    return initrd


def _decompress(src: Path, dst: Path) -> None:
    # busybox insmod cannot read compressed modules; unpack them here.
    if src.suffix == ".xz":
        data = subprocess.run(
            ["xz", "-dc", str(src)], check=True, capture_output=True
        ).stdout
    elif src.suffix == ".zst":
        data = subprocess.run(
            ["zstd", "-dc", str(src)], check=True, capture_output=True
        ).stdout
    elif src.suffix == ".gz":
        data = gzip.decompress(src.read_bytes())
    else:
        data = src.read_bytes()
    dst.write_bytes(data)


# ---------------------------------------------------------------- running


def kvm_usable() -> bool:
    """Whether qemu can use KVM for a stock Debian kernel here.

    A /dev/kvm served by kvm_pvm (pagetable-based nested virtualization, as
    on some cloud sandboxes) only runs guests built for PVM: a Debian kernel
    hangs right after "Probing EDD".  KM_ACCEL=kvm|tcg overrides the guess.
    """
    forced = os.environ.get("KM_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced == "kvm"
    if os.path.exists("/sys/module/kvm_pvm"):
        return False
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def run_vm(suite: str, mode: str, out: Path) -> dict:
    kdir = fetch(suite)
    initrd = build_initrd(kdir)
    vmlinuz = next((kdir / "root" / "boot").glob("vmlinuz-*"))
    kvm = kvm_usable()
    if kvm:
        accel = ["-accel", "kvm", "-cpu", "host"]
    else:
        accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    console = out / "console.log"
    append = f"console=ttyS0 panic=-1 loglevel=4 km.mode={mode} km.nofile={_nofile()}"
    share = "security_model=none,multidevs=remap"
    cmd = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-no-reboot",
        *accel, "-m", str(VM_MEMORY_MB), "-smp", str(min(2, os.cpu_count() or 1)),
        "-display", "none", "-serial", f"file:{console}",
        "-kernel", str(vmlinuz), "-initrd", str(initrd),
        "-append", append,
        "-virtfs", f"local,path=/,mount_tag=hostroot,{share},readonly=on",
        "-virtfs", f"local,path={out},mount_tag=kmout,{share}",
    ]  # fmt: skip
    logger.info(
        "kernel-matrix: booting %s (%s), io_uring %s", suite, vmlinuz.name, mode
    )
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, check=False, timeout=VM_TIMEOUT_S, capture_output=True, text=True
        )
        note = proc.stderr.strip()[-500:] if proc.returncode else ""
    except subprocess.TimeoutExpired:
        note = f"VM killed after {VM_TIMEOUT_S} s"
    elapsed = time.monotonic() - started
    result = collect(out)
    result.update(
        kernel=suite,
        debian_version=KERNELS[suite],
        package=(kdir / "unpacked").read_text().split()[0],
        how="qemu+kvm" if kvm else "qemu TCG",
        wall_seconds=round(elapsed),
    )
    if note:
        result["notes"].append(note)
    if not result["finished"]:
        tail = console.read_text(errors="replace")[-1500:] if console.exists() else ""
        result["console_tail"] = tail
    return result


def _nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_host(mode: str, out: Path) -> dict:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "KM_IN_VM"}
    cmd = ["sh", str(HERE / "guest.sh"), str(out), mode]
    subprocess.run(cmd, check=False, env=env, timeout=VM_TIMEOUT_S)
    result = collect(out)
    result.update(
        kernel="host",
        debian_version=None,
        package=None,
        how="directly on the host (no VM)",
        wall_seconds=round(time.monotonic() - started),
    )
    return result


# ---------------------------------------------------------------- results


def junit_counts(xml_text: str) -> dict:
    """passed/failed/errors/skipped from pytest's JUnit XML."""
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    why: dict[str, str] = {}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if bad is not None:
                name = case.get("classname", "").rpartition(".")[2]
                name = f"{name}::{case.get('name', '?')}".lstrip(":")
                failed.append(name)
                why[name] = " ".join(bad.get("message", "").split())[:200]
    passed = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
    return {
        "passed": passed,
        "failed": totals["failures"],
        "errors": totals["errors"],
        "skipped": totals["skipped"],
        "failed_names": failed,
        "failed_messages": why,
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def collect(out: Path) -> dict:
    """One cell's result from guest.sh's output directory."""
    result: dict = {
        "uname": _read(out / "uname.txt"),
        "disabled_by": _read(out / "disable.txt"),
        "memlock": _read(out / "memlock.txt"),
        "nofile": _read(out / "nofile.txt"),
        "finished": (out / "finished").exists(),
        "seconds_in_guest": _read(out / "seconds.txt"),
        "probe": None,
        "doctor_ok": None,
        "backend": None,
        "tests": None,
        "pytest_rc": _read(out / "pytest.rc"),
        "notes": [],
    }
    doctor = _read(out / "doctor.json")
    if doctor:
        try:
            facts = json.loads(doctor)
            result["probe"] = facts.get("facts", {}).get("uring")
            result["doctor_ok"] = facts.get("ok")
        except ValueError:
            result["notes"].append("doctor --json printed no JSON")
    elif result["uname"]:
        result["notes"].append(
            "doctor: " + (_read(out / "doctor.err") or "no output")[-300:]
        )
    backend = _read(out / "backend.json")
    if backend:
        try:
            result["backend"] = json.loads(backend.splitlines()[-1])
        except ValueError:
            result["notes"].append("backend: unparsable output")
    elif result["uname"]:
        result["notes"].append(
            "backend: " + (_read(out / "backend.err") or "no output")[-300:]
        )
    junit = _read(out / "junit.xml")
    if junit:
        result["tests"] = junit_counts(junit)
    elif result["uname"]:
        result["notes"].append(
            "pytest: " + (_read(out / "pytest.log") or "no output")[-300:]
        )
    return result


def _cell_name(kernel: str, mode: str) -> str:
    return f"{kernel}-io_uring-{mode}"


def render(results: list[dict]) -> str:
    """RESULTS.md from the stored cell results."""
    order = {k: i for i, k in enumerate(KERNELS)}
    results = sorted(
        results, key=lambda r: (order.get(r["kernel"], 99), MODES.index(r["mode"]))
    )
    lines = [
        "# Kernel matrix results",
        "",
        "Produced by `kernel-matrix/run` (see README.md); do not edit by hand.",
        "Each row is one boot: `askr doctor --json`, the backend that",
        '`open_backend("auto")` opened, and `pytest tests/test_loop_*.py`.',
        "",
        (
            "| kernel | io_uring | io_uring usable | features detected | missing "
            "| backend chosen | tests passed / failed / skipped | run |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append("| " + " | ".join(_row(r)) + " |")
    lines += ["", *LEGEND]

    notes = [r for r in results if r.get("notes") or r.get("console_tail")]
    if notes:
        lines += ["", "## Notes", ""]
        for r in notes:
            label = f"{r['kernel']} ({r.get('uname') or '?'}), io_uring {r['mode']}"
            for note in r.get("notes", []):
                lines.append(f"- {label}: {_one_line(note)}")
            if r.get("console_tail"):
                lines += [
                    f"- {label}: console tail:",
                    "",
                    "```",
                    r["console_tail"].rstrip(),
                    "```",
                    "",
                ]
    failed = [r for r in results if r.get("tests") and r["tests"]["failed_names"]]
    if failed:
        lines += ["", "## Failed tests", ""]
        for r in failed:
            lines.append(f"- {r['kernel']} ({r.get('uname')}), io_uring {r['mode']}:")
            why = r["tests"].get("failed_messages", {})
            for name in r["tests"]["failed_names"]:
                reason = f": {_one_line(why[name])}" if why.get(name) else ""
                lines.append(f"  - `{name}`{reason}")
    return "\n".join(lines) + "\n"


LEGEND = [
    "Columns: *io_uring* is `on`, or `off` with how it was denied (`sysctl`:",
    "kernel.io_uring_disabled=2, on kernels that have it; `seccomp`:",
    "kernel-matrix/no_uring.py makes io_uring_setup fail with ENOSYS).",
    "*features detected* and *missing* are the probe's findings on a real ring",
    "(features, set-up flags, opcodes); *backend chosen* is what",
    '`open_backend("auto")` opened.  Failed counts include errors; skipped',
    "tests are io_uring-only tests on a kernel where io_uring is unusable.",
    "*run*: how the kernel ran (qemu TCG is software emulation: this machine's",
    "/dev/kvm cannot run stock kernels, see README.md), wall time, the commit",
    "tested, and the date.  The host row is the running kernel, tested",
    "without a VM.",
]


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(r: dict) -> list[str]:
    kernel = r.get("uname") or "did not boot"
    if r.get("debian_version"):
        kernel = f"{r['kernel']} {kernel}"
    else:
        kernel = f"host {kernel}"
    mode = "on"
    if r["mode"] == "off":
        mode = f"off ({r.get('disabled_by') or '?'})"
    probe = r.get("probe")
    if probe:
        usable = "yes" if probe.get("usable") else f"no: {probe.get('reason')}"
        feats = probe.get("features", {})
        have = [FEATURE_LABELS.get(k, k) for k, v in feats.items() if v]
        missing = [FEATURE_LABELS.get(k, k) for k, v in feats.items() if not v]
        flags = probe.get("flags", {})
        ops = probe.get("ops", {})
        if probe.get("setup_ok"):
            missing += [f"flag {k}" for k, v in flags.items() if not v]
            missing += [f"op {k}" for k, v in ops.items() if not v]
        else:
            have, missing = [], ["(no ring)"]
    else:
        usable, have, missing = "?", [], []
    backend = r.get("backend")
    chosen = backend["name"] if backend else "?"
    tests = r.get("tests")
    if tests:
        counts = f"{tests['passed']} / {tests['failed'] + tests['errors']} / "
        counts += str(tests["skipped"])
    else:
        counts = "not run" if not r.get("finished") else "no report"
    run = r.get("how", "")
    if r.get("wall_seconds") is not None:
        run += f", {r['wall_seconds']} s"
    if r.get("source"):
        run += f", {r['source']}"
    if r.get("date"):
        run += f", {r['date']}"
    return [
        kernel,
        mode,
        _one_line(usable),
        ", ".join(have) or "-",
        ", ".join(missing) or "-",
        chosen,
        counts,
        run,
    ]


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))]


# ---------------------------------------------------------------- command


def parse_kernels(names: list[str]) -> list[str]:
    if not names or names == ["all"]:
        return list(KERNELS)
    chosen = []
    for name in names:
        name = ALIASES.get(name, name)
        if name not in KERNELS:
            raise SystemExit(
                f"unknown kernel {name!r}: choose from "
                + ", ".join([*KERNELS, *ALIASES])
            )
        chosen.append(name)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kernel-matrix/run",
        description="Run askr doctor and the event-loop tests on several kernels.",
    )
    parser.add_argument(
        "kernels",
        nargs="*",
        help="bullseye|5.10, bookworm|6.1, trixie|6.12, host; "
        "none or 'all' for every one",
    )
    parser.add_argument(
        "--mode",
        choices=[*MODES, "both"],
        default="both",
        help="io_uring on, off, or both (default)",
    )
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="download and unpack the kernels, run nothing",
    )
    parser.add_argument(
        "--tests",
        metavar="ARGS",
        help="pytest arguments instead of tests/test_loop_*.py "
        "(e.g. 'tests/test_loop_backends.py -k timeout')",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md from results/*.json",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    kernels = parse_kernels(args.kernels)
    modes = MODES if args.mode == "both" else (args.mode,)

    if not args.render_only:
        for kernel in kernels:
            if kernel != "host":
                fetch(kernel)
        if args.fetch_only:
            return 0
        RESULTS_DIR.mkdir(exist_ok=True)
        narrowed: list[dict] = []
        for kernel in kernels:
            for mode in modes:
                result = run_cell(kernel, mode, args.tests)
                logger.info("kernel-matrix: %s", " | ".join(_row(result)))
                text = json.dumps(result, indent=1, sort_keys=True) + "\n"
                if args.tests:
                    # A narrowed run is a diagnosis, not a matrix row.
                    out = CACHE / "out" / _cell_name(kernel, mode) / "result.json"
                    out.write_text(text)
                    narrowed.append(result)
                    logger.info("kernel-matrix: narrowed run kept in %s", out)
                    continue
                (RESULTS_DIR / f"{_cell_name(kernel, mode)}.json").write_text(text)
                RESULTS_MD.write_text(render(load_results()))
        if args.tests:
            return 0 if all(map(_cell_ok, narrowed)) else 1

    RESULTS_MD.write_text(render(load_results()))
    bad = [r for r in load_results() if r["kernel"] in kernels and not _cell_ok(r)]
    for r in bad:
        logger.error(
            "kernel-matrix: %s io_uring %s did not pass", r["kernel"], r["mode"]
        )
    return 1 if bad else 0


def _cell_ok(r: dict) -> bool:
    tests = r.get("tests")
    if not tests or tests["failed"] or tests["errors"] or not tests["passed"]:
        return False
    backend = (r.get("backend") or {}).get("name")
    # With io_uring denied the loop must have fallen back to epoll.
    return backend == "epoll" if r["mode"] == "off" else backend is not None


def _source_state() -> str:
    """The commit the cell ran, marked when askr/ or tests/ had local edits."""
    git = ["git", "-C", str(PROJECT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "askr", "tests"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head or '?'}{' + local edits' if dirty else ''}"


def run_cell(kernel: str, mode: str, tests: str | None = None) -> dict:
    out = CACHE / "out" / _cell_name(kernel, mode)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if tests:
        (out / "pytest-args").write_text(tests + "\n")
    if kernel == "host":
        result = run_host(mode, out)
    else:
        result = run_vm(kernel, mode, out)
    result["mode"] = mode
    if tests:
        result["notes"].append(f"tests narrowed to: {tests}")
    result["source"] = _source_state()
    result["host_python"] = platform.python_version()
    result["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    return result


if __name__ == "__main__":
    sys.exit(main())
