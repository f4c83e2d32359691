"""`askr doctor`: can this host serve this configuration, and if not, why.

Facts are gathered once (``gather()``) into a ``Facts`` object: the PHP
build (from ``askr.php.bridge.build_info()`` or, when the bridge is not
built, from php-config, the php binary and the embed library loaded with
ctypes), the io_uring probe (``askr.uring.probe.probe()``, or a bare
io_uring_setup syscall), limits, ports and the configuration.  Each check
is a pure function of Facts returning Check(s), so every verdict can be
tested with invented facts (an old kernel, a ZTS build, seccomp) on any
machine.

Following liburing's habit, io_uring support is probed rather than inferred
from version numbers where a probe exists; the kernel version is reported
for context.  Only blockers ("fail") make the exit status non-zero: io
"auto" falls back to epoll, so a missing io_uring is a warning unless io =
"uring" is forced.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import platform
import re
import resource
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from askr import config as config_mod

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}

# What a stock Laravel application loads (Laravel's server requirements).
LARAVEL_EXTENSIONS = ("ctype", "fileinfo", "json", "mbstring", "openssl", "pdo",
                      "tokenizer", "xml")

# Operations and features the io_uring loop relies on; a missing one makes
# the loop use a slower path or fall back to epoll (askr/uring decides).
MIN_KERNEL = (5, 1)  # io_uring appeared in 5.1
GOOD_KERNEL = (5, 10)  # first LTS with accept, send/recv ops and fast poll

# Connections a worker should be able to hold open at once, plus margin for
# PHP's own files (sessions, logs, the database).
NOFILE_WANTED = 8192


@dataclass(frozen=True)
class Check:
    status: str  # OK | WARN | FAIL
    name: str
    fact: str
    advice: str = ""


@dataclass
class Facts:
    """Everything the checks look at; gathered for real or built by tests."""

    php: dict[str, Any] | None = None  # version, zts, extension_dir, ...
    php_error: str | None = None
    uring: dict[str, Any] = field(default_factory=dict)
    uring_source: str = "probe"  # "probe" | "syscall" (probe not built)
    cpu_count: int = 1
    nofile: tuple[int, int] = (1024, 1024)
    euid: int = 1000
    config: Any = None  # config.Config or None
    config_path: str | None = None
    config_errors: list[str] = field(default_factory=list)
    ports: dict[str, str | None] = field(default_factory=dict)  # addr -> why


def kernel_tuple(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _io_setting(f: Facts) -> str:
    return f.config.server.io if f.config is not None else "auto"


# ---- checks: pure functions of Facts --------------------------------------


def check_config(f: Facts) -> list[Check]:
    if f.config_errors:
        first = "; ".join(f.config_errors[:3])
        return [Check(FAIL, "config", (
            f"{f.config_path}: {len(f.config_errors)} problem(s): {first}"),
            f"run `askr config-check {f.config_path}` and fix each line")]
    if f.config is None:
        return [Check(OK, "config", "no --config given; checking defaults")]
    return [Check(OK, "config", f"{f.config_path}: valid, {f.config.mode} mode")]


def check_php_embed(f: Facts) -> list[Check]:
    if f.php is None:
        return [Check(FAIL, "php embed", f.php_error or "libphp not found",
                      "install the embed SAPI: apt install libphp8.2-embed "
                      "php8.2-dev")]
    php = f.php
    if not php.get("embed_loadable", True):
        return [Check(FAIL, "php embed", "{} cannot be loaded: {}".format(
            php.get("embed_lib"), php.get("embed_error")),
            "reinstall libphp8.2-embed; check `ldd {}`".format(php.get("embed_lib")))]
    return [Check(OK, "php embed", "{} ({})".format(
        php.get("embed_lib", "libphp"), php.get("source", "bridge")))]


def check_php_version(f: Facts) -> list[Check]:
    if f.php is None:
        return []
    version = f.php.get("version", "?")
    vid = int(f.php.get("version_id") or 0)
    if vid and vid < 80000:
        return [Check(FAIL, "php version", version,
                      "Askr's SAPI needs PHP 8.0 or later")]
    if vid and vid < 80100:
        return [Check(WARN, "php version", f"{version} (Askr is tested on 8.1+)",
                      "upgrade to PHP 8.1 or later")]
    return [Check(OK, "php version", version)]


def check_php_nts(f: Facts) -> list[Check]:
    if f.php is None:
        return []
    if f.php.get("zts"):
        return [Check(FAIL, "php thread safety", "ZTS (thread-safe) build",
                      "Askr runs one PHP interpreter per forked worker; a ZTS "
                      "build adds TSRM locking for nothing and its thread-local "
                      "state is not fork-safe. Use the NTS embed library "
                      "(Debian's libphp8.2-embed is NTS)")]
    return [Check(OK, "php thread safety", "NTS (non-thread-safe), as Askr needs")]


def _ini_extension_names(f: Facts) -> list[tuple[str, str]]:
    if f.config is None:
        return []
    return config_mod.ini_extensions(f.config.worker.ini)


def check_php_extensions(f: Facts) -> list[Check]:
    if f.php is None or f.php.get("extensions") is None:
        return [Check(WARN, "php extensions", "extension list unavailable",
                      "build the bridge (python -m askr.build) or install php-cli")]
    loaded = {e.lower() for e in f.php["extensions"]}
    out = []
    missing = [e for e in LARAVEL_EXTENSIONS if e not in loaded]
    if missing:
        out.append(Check(WARN, "php extensions (Laravel)",
                         "missing: {}".format(", ".join(missing)),
                         "Laravel needs them: apt install {}".format(" ".join(
                             f"php8.2-{e}" for e in missing
                             if e not in ("json", "tokenizer", "ctype", "pdo")))))
    else:
        out.append(Check(OK, "php extensions (Laravel)",
                         "all present: " + ", ".join(LARAVEL_EXTENSIONS)))

    ini = f.config.worker.ini if f.config is not None else ""
    ext_dir = config_mod.ini_value(ini, "extension_dir") or f.php.get(
        "extension_dir")
    for directive, value in _ini_extension_names(f):
        where = config_mod.extension_path(value, ext_dir)
        name = f"php ini {directive}={value}"
        if where is not None and where.is_file():
            out.append(Check(OK, name, str(where)))
        else:
            out.append(Check(FAIL, name, "%s not found" % (where or value),
                             "install the extension or fix [worker] ini; PHP "
                             "extension dir is {}".format(f.php.get("extension_dir"))))
    return out


def check_opcache(f: Facts) -> list[Check]:
    if f.php is None:
        return []
    loaded = {e.lower() for e in f.php.get("extensions") or ()}
    ext_dir = f.php.get("extension_dir")
    if "zend opcache" in loaded or "opcache" in loaded:
        return [Check(OK, "opcache", "loaded")]
    if ext_dir and Path(ext_dir, "opcache.so").is_file():
        return [Check(OK, "opcache", f"{ext_dir}/opcache.so available",
                      "")]
    return [Check(WARN, "opcache", "not found",
                  "apt install php8.2-opcache; without it every worker "
                  "recompiles each script")]


def check_app_files(f: Facts) -> list[Check]:
    if f.config is None:
        return []
    out = []
    for label, path, is_dir in (("worker script", f.config.worker.script, False),
                                ("app base", f.config.worker.app_base, True),
                                ("document root", f.config.server.root, True)):
        if not path:
            continue
        p = Path(path)
        good = (p.is_dir() if is_dir else p.is_file()) and os.access(p, os.R_OK)
        if good:
            out.append(Check(OK, label, path))
        else:
            out.append(Check(FAIL, label, f"{path} missing or unreadable",
                             f"fix the path in {f.config_path}"))
    return out


def check_kernel(f: Facts) -> list[Check]:
    release = f.uring.get("kernel") or platform.release()
    ver = kernel_tuple(release)
    forced = _io_setting(f) == "uring"
    if ver < MIN_KERNEL:
        return [Check(FAIL if forced else WARN, "kernel", f"{release}: no io_uring "
                      "(added in 5.1)",
                      "io = \"uring\" cannot work here; use \"auto\"" if forced
                      else "epoll will be used; 5.10 or later for io_uring")]
    if ver < GOOD_KERNEL:
        return [Check(WARN, "kernel", f"{release}: early io_uring, ops the loop uses "
                      "are missing or slow",
                      "upgrade to 5.10+ (an LTS with accept/send/recv ops)")]
    return [Check(OK, "kernel", release)]


def check_uring_sysctl(f: Facts) -> list[Check]:
    value = f.uring.get("io_uring_disabled")
    forced = _io_setting(f) == "uring"
    if value is None:
        return [Check(OK, "kernel.io_uring_disabled", "absent (kernel before 6.6)")]
    if value == 0:
        return [Check(OK, "kernel.io_uring_disabled", "0: allowed for all")]
    if value == 1:
        allowed = f.euid == 0
        return [Check(OK if allowed else WARN, "kernel.io_uring_disabled",
                      "1: only root and kernel.io_uring_group may create rings",
                      "" if allowed else "run askr in io_uring_group, or "
                      "sysctl kernel.io_uring_disabled=0")]
    return [Check(FAIL if forced else WARN, "kernel.io_uring_disabled",
                  f"{value}: io_uring disabled for everyone",
                  "sysctl -w kernel.io_uring_disabled=0 to use io_uring; "
                  "otherwise epoll is used")]


_SETUP_ERRNO_HINTS = {
    errno.EPERM: (("refused (EPERM): a seccomp filter or container policy "
                   "blocks io_uring_setup"),
                  ("allow io_uring_setup/enter/register in the seccomp profile "
                   "(docker: --security-opt seccomp=...) or keep io = \"auto\" "
                   "for epoll")),
    errno.ENOSYS: ("not implemented (ENOSYS): kernel built without io_uring",
                   "use a kernel with CONFIG_IO_URING=y, or io = \"auto\""),
    errno.ENOMEM: ("out of memory (ENOMEM): RLIMIT_MEMLOCK too low for the ring",
                   "raise LimitMEMLOCK (ulimit -l) or use kernel 5.12+"),
}


def check_uring_setup(f: Facts) -> list[Check]:
    ok = f.uring.get("setup_ok")
    forced = _io_setting(f) == "uring"
    if ok:
        return [Check(OK, "io_uring setup", "a ring can be created")]
    if ok is None:
        return [Check(WARN, "io_uring setup", "not probed",
                      "build the native parts: python -m askr.build")]
    err = f.uring.get("setup_errno")
    fact, advice = _SETUP_ERRNO_HINTS.get(err, (
        "failed: %s" % (errno.errorcode.get(err, err) if err else "unknown"),
        "see dmesg; keep io = \"auto\" to run on epoll"))
    return [Check(FAIL if forced else WARN, "io_uring setup", fact, advice)]


def check_uring_capabilities(f: Facts) -> list[Check]:
    if not f.uring.get("setup_ok"):
        return []
    if f.uring_source != "probe":
        return [Check(WARN, "io_uring ops", "not probed: askr.uring.probe is "
                      "not importable", "python -m askr.build")]
    out = []
    for group, label in (("ops", "io_uring op"), ("features", "io_uring feature"),
                         ("flags", "io_uring flag")):
        for name, supported in sorted((f.uring.get(group) or {}).items()):
            if supported:
                out.append(Check(OK, f"{label} {name}", "supported"))
            else:
                out.append(Check(WARN, f"{label} {name}", "absent",
                                 "the loop uses a slower path; a newer kernel "
                                 "has it"))
    return out


def check_memlock(f: Facts) -> list[Check]:
    memlock = f.uring.get("memlock")
    if memlock is None:
        return []
    shown = "unlimited" if memlock < 0 or memlock == resource.RLIM_INFINITY else (
        f"{memlock // 1024} KiB")
    # Before 5.12 ring memory counted against RLIMIT_MEMLOCK; later kernels
    # charge it to the memory cgroup instead.
    if kernel_tuple(f.uring.get("kernel", "")) < (5, 12) and 0 <= memlock < (
            512 << 10):
        return [Check(WARN, "memlock limit", shown,
                      "kernels before 5.12 charge rings to RLIMIT_MEMLOCK: set "
                      "LimitMEMLOCK=8M in the unit or ulimit -l 8192")]
    return [Check(OK, "memlock limit", shown)]


def check_backend(f: Facts) -> list[Check]:
    io = _io_setting(f)
    usable = f.uring.get("usable", f.uring.get("setup_ok"))
    reason = f.uring.get("reason") or ("io_uring setup works" if usable else
                                       "io_uring unavailable")
    if io == "epoll":
        return [Check(OK, "io backend", "epoll (forced by io = \"epoll\")")]
    if usable:
        return [Check(OK, "io backend", f"{io}: io_uring ({reason})")]
    if io == "uring":
        return [Check(FAIL, "io backend", f"io = \"uring\" but {reason}",
                      "set io = \"auto\" to fall back to epoll")]
    return [Check(WARN, "io backend", f"auto: epoll ({reason})",
                  "fine to serve; fix the io_uring lines above for io_uring")]


def check_workers(f: Facts) -> list[Check]:
    workers = f.config.server.workers if f.config is not None else f.cpu_count
    fact = f"{workers} worker(s), {f.cpu_count} CPU(s)"
    if workers > 2 * f.cpu_count:
        return [Check(WARN, "workers", fact, "PHP is CPU-bound: more than two "
                      "workers per CPU mostly adds memory; use workers = \"auto\"")]
    return [Check(OK, "workers", fact)]


def check_nofile(f: Facts) -> list[Check]:
    soft, hard = f.nofile
    fact = f"RLIMIT_NOFILE soft {soft}, hard {hard}"
    if soft < NOFILE_WANTED:
        how = (f"ulimit -n {NOFILE_WANTED} (the hard limit allows it)"
               if hard >= NOFILE_WANTED else "LimitNOFILE=65536 in the unit")
        return [Check(WARN, "open files", fact, (
            "each keep-alive connection holds a descriptor; "
            f"{NOFILE_WANTED} is wanted: {how}"))]
    return [Check(OK, "open files", fact)]


def check_ports(f: Facts) -> list[Check]:
    out = []
    for addr, why in f.ports.items():
        if why:
            out.append(Check(FAIL, f"listen {addr}", why,
                             "stop the other process (ss -ltnp) or pick "
                             "another port"))
        else:
            out.append(Check(OK, f"listen {addr}", "free"))
    return out


def check_admin(f: Facts) -> list[Check]:
    if f.config is None or f.config.admin.listen is None:
        return []
    addr = f.config.admin.listen
    if addr.is_loopback:
        return [Check(OK, "admin listener", f"{addr} (loopback)")]
    if f.config.admin.allow_public:
        return [Check(WARN, "admin listener", f"{addr} is public (allow_public)",
                      "the admin API has no authentication: firewall it")]
    return [Check(FAIL, "admin listener", f"{addr} is not loopback",
                  "use 127.0.0.1:9180, or set allow_public = true behind a "
                  "firewall")]


def check_root_user(f: Facts) -> list[Check]:
    if f.euid == 0:
        return [Check(WARN, "user", "running as root",
                      "run as a dedicated user (systemd User=askr); for ports "
                      "below 1024 grant CAP_NET_BIND_SERVICE")]
    return [Check(OK, "user", f"uid {f.euid}")]


CHECKS: tuple[Callable[[Facts], list[Check]], ...] = (
    check_config, check_php_embed, check_php_version, check_php_nts,
    check_php_extensions, check_opcache, check_app_files, check_kernel,
    check_uring_sysctl, check_uring_setup, check_uring_capabilities,
    check_memlock, check_backend, check_workers, check_nofile, check_ports,
    check_admin, check_root_user,
)


def run_checks(f: Facts) -> list[Check]:
    return [c for check in CHECKS for c in check(f)]


# ---- gathering real facts --------------------------------------------------


def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                         env=env, check=True)
    return res.stdout.strip()


def _php_from_tools() -> dict[str, Any]:
    """PHP facts without the bridge: php-config, the CLI, and the .so itself."""
    php_config = os.environ.get("ASKR_PHP_CONFIG", "php-config")
    version = _run(php_config, "--version")
    info: dict[str, Any] = {
        "source": "php-config",
        "version": version,
        "version_id": int(_run(php_config, "--vernum")),
        "extension_dir": _run(php_config, "--extension-dir"),
    }
    prefix = _run(php_config, "--prefix")
    major_minor = ".".join(version.split(".")[:2])
    candidates = [Path(prefix, "lib", f"libphp{major_minor}.so"),
                  Path(prefix, "lib", "libphp.so"),
                  Path(prefix, "lib", "libphp{}.so".format(version.split(".")[0]))]
    lib = next((p for p in candidates if p.exists()), None)
    if lib is None:
        raise FileNotFoundError(f"no libphp*.so under {prefix}/lib")
    info["embed_lib"] = str(lib)
    try:
        handle = ctypes.CDLL(str(lib), mode=ctypes.RTLD_LOCAL)
        info["embed_loadable"] = True
        # ZTS builds export the TSRM entry point; NTS builds do not.
        info["zts"] = hasattr(handle, "tsrm_startup")
    except OSError as exc:
        info["embed_loadable"], info["embed_error"] = False, str(exc)
        info["zts"] = None

    # The CLI binary reading the embed SAPI's ini gives the embed's modules.
    binary = _run(php_config, "--php-binary")
    env = dict(os.environ)
    ini_dir = Path("/etc/php", major_minor, "embed")
    if ini_dir.is_dir():
        env.update(PHPRC=str(ini_dir), PHP_INI_SCAN_DIR=str(ini_dir / "conf.d"))
    try:
        mods = _run(binary, "-m", env=env).splitlines()
        info["extensions"] = [m for m in mods if m and not m.startswith("[")]
    except (OSError, subprocess.SubprocessError):
        info["extensions"] = None
    return info


def gather_php() -> tuple[dict[str, Any] | None, str | None]:
    try:
        from askr.php import bridge  # type: ignore[attr-defined]

        info = dict(bridge.build_info())
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        # Not built yet, or failing: the command-line tools still tell a lot.
        logger.debug("doctor php bridge unavailable: %s", exc)
        info = None
    try:
        tools = _php_from_tools()
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        if info is None:
            return None, f"PHP not found: {exc}"
        tools = {}
    if info is None:
        return tools, None
    # The bridge knows the build it was compiled against; the tools add the
    # library path and the extension list.
    return {**tools, **info, "source": "bridge"}, None


def _setup_syscall() -> tuple[bool, int | None]:
    """Create and close a 4-entry ring with a raw io_uring_setup (425)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, 4, params)
    if fd < 0:
        return False, ctypes.get_errno()
    os.close(fd)
    return True, None


def gather_uring() -> tuple[dict[str, Any], str]:
    try:
        from askr.uring.probe import probe  # type: ignore[import-not-found]

        return dict(probe()), "probe"
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        # Not built yet: a bare setup call still answers the main question.
        logger.debug("doctor uring probe unavailable: %s", exc)
    disabled: int | None = None
    try:
        disabled = int(Path("/proc/sys/kernel/io_uring_disabled").read_text())
    except (OSError, ValueError):
        pass
    ok, err = _setup_syscall()
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    return ({"kernel": platform.release(), "io_uring_disabled": disabled,
             "setup_ok": ok, "setup_errno": err, "memlock": memlock,
             "usable": ok, "reason": "io_uring_setup %s" % (
                 "works" if ok else f"failed: {errno.errorcode.get(err, err)}")},
            "syscall")


def gather(config_path: str | None) -> Facts:
    f = Facts(cpu_count=os.cpu_count() or 1,
              nofile=resource.getrlimit(resource.RLIMIT_NOFILE),
              euid=os.geteuid(), config_path=config_path)
    if config_path:
        try:
            f.config = config_mod.load(config_path)
        except config_mod.ConfigError as exc:
            f.config_errors = [str(p) for p in exc.problems]
    f.php, f.php_error = gather_php()
    f.uring, f.uring_source = gather_uring()

    cfg = f.config
    if cfg is not None:
        addrs = list(cfg.server.listen) + list(cfg.tls.listen)
        if cfg.admin.listen:
            addrs.append(cfg.admin.listen)
        for addr in addrs:
            f.ports[str(addr)] = config_mod.check_bind(addr)
    return f


def report(checks: list[Check], as_json: bool, facts: Facts | None = None) -> str:
    blocked = any(c.status == FAIL for c in checks)
    if as_json:
        doc: dict[str, Any] = {"ok": not blocked,
                               "checks": [asdict(c) for c in checks]}
        if facts is not None:
            doc["facts"] = {"php": facts.php, "uring": facts.uring,
                            "uring_source": facts.uring_source,
                            "cpu_count": facts.cpu_count,
                            "nofile": list(facts.nofile), "euid": facts.euid}
        return json.dumps(doc, indent=2, default=str)
    lines = []
    for c in checks:
        line = f"{MARKS[c.status]} {c.name:<32} {c.fact}"
        if c.advice and c.status != OK:
            line += "\n    -> " + c.advice
        lines.append(line)
    lines.append("blocked: fix the ✗ lines" if blocked
                 else "ready to serve")
    return "\n".join(lines)


def main(config_path: str | None, as_json: bool) -> int:
    facts = gather(config_path)
    checks = run_checks(facts)
    print(report(checks, as_json, facts))
    return 1 if any(c.status == FAIL for c in checks) else 0
