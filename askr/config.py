"""askr.toml: one table of settings feeding the parser, the CLI and the docs.

Every setting is declared once in ``SETTINGS`` (section, name, validator,
default, command-line flag, one-line reason for the default).  ``load()``
reads the TOML file, applies command-line overrides, validates every value
and every cross-setting rule, and either returns a frozen ``Config`` or
raises ``ConfigError`` listing *all* problems, each located as
``FILE:LINE: [section] key: message``.

tomllib reports no positions for values, so ``_locate()`` scans the text
once for ``[section]`` headers and ``key =`` lines; that is enough to point
at the offending line for everything a person writes by hand.

``check()`` goes further for ``askr config-check``: files and directories
exist, certificates parse and match their key, listen ports can be bound.
It never starts anything.

Shape of the result::

    cfg = load("askr.toml", {"server.workers": 4})
    cfg.server.listen      -> (Address("127.0.0.1", 8080), ...)
    cfg.server.workers     -> 4            ("auto" resolved to os.cpu_count())
    cfg.worker.script      -> "/abs/path/worker.php" or None (classic mode)
    cfg.worker.ini         -> "opcache.enable=1\\n..." (a table is converted)
    cfg.mode               -> "worker" | "classic"
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import ipaddress
import logging
import math
import os
import re
import socket
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from askr.errors import ConfigError, Problem

logger = logging.getLogger(__name__)

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "askr.toml"
CLI_SOURCE = "command line"


class Address(NamedTuple):
    """A listen address; ``str()`` gives the form written in askr.toml."""

    host: str
    port: int

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


# Validators: take a raw TOML (or command-line) value, return the clean value
# or raise Invalid whose text completes "expected ...".


class Invalid(ValueError):
    """A value does not fit its setting; the text completes "expected ..."."""


def parse_address(value: Any) -> Address:
    if not isinstance(value, str):
        raise Invalid('an address string like "127.0.0.1:8080"')
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", value)
    if not m:
        raise Invalid(
            'an address like "127.0.0.1:8080", "0.0.0.0:80" or "[::1]:8080", '
            f"got {value!r}"
        )
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise Invalid(f"a valid IP address, got {host!r}") from None
    if port > 65535:
        raise Invalid(f"a port between 0 and 65535, got {port}")
    return Address(host, port)


def _listen_list(value: Any) -> tuple[Address, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise Invalid('a list of addresses like ["127.0.0.1:8080"]')
    addresses, wrong = [], []
    for v in value:
        try:
            addresses.append(parse_address(v))
        except Invalid as exc:
            wrong.append(str(exc))
    if wrong:
        raise Invalid("; ".join(wrong))
    return tuple(addresses)


def _optional_address(value: Any) -> Address | None:
    if value == "":
        return None
    return parse_address(value)


def _int(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"an integer >= {low}, got {value!r}")
        if value < low:
            raise Invalid(f"an integer >= {low}, got {value}")
        return value

    return check


def _number(low: float, high: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        span = f"between {low:g} and {high:g}" if high is not None else (
            f">= {low:g}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"a number {span}, got {value!r}")
        # nan compares false with everything, so it slipped through the
        # range check and made every timeout never fire; inf is no better.
        if not math.isfinite(value):
            raise Invalid(f"a finite number {span}, got {value:g}")
        if value < low or (high is not None and value > high):
            raise Invalid(f"a number {span}, got {value:g}")
        return float(value)

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"true or false, got {value!r}")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            quoted = ", ".join(f'"{o}"' for o in options)
            raise Invalid(f"one of {quoted}, got {value!r}")
        return value

    return check


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as "512K", "128M", "1G"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", value.upper())
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise Invalid(f'a size in bytes or a string like "128M" or "1G", got {value!r}')


MAX_WORKERS = 1024   # each is a process with its own PHP runtime


def _workers(value: Any) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
            or value > MAX_WORKERS:
        raise Invalid(f'"auto" or an integer from 1 to {MAX_WORKERS}, '
                      f'got {value!r}')
    return value


def _optional_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"a string, got {value!r}")
    return value


def _flatten_ini(table: dict[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for key, val in table.items():
        name = prefix + key
        if isinstance(val, dict):
            lines += _flatten_ini(val, name + ".")
            continue
        for item in val if isinstance(val, list) else [val]:
            if isinstance(item, bool):
                item = "1" if item else "0"
            if isinstance(item, (dict, list)):
                raise Invalid(f"a scalar value for ini key {name!r}")
            lines.append(f"{name}={item}")
    return lines


def _ini(value: Any) -> str:
    """ini as "key=value" lines; a TOML table is converted to that text."""
    if isinstance(value, dict):
        return "\n".join(_flatten_ini(value))
    if not isinstance(value, str):
        raise Invalid('a string of "key=value" lines or a table')
    for n, line in enumerate(value.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith((";", "#", "[")) and "=" not in line:
            raise Invalid(f'"key=value" on ini line {n}, got {line!r}')
    return value


@dataclass(frozen=True)
class Setting:
    section: str
    name: str
    check: Callable[[Any], Any]
    default: Any
    doc: str
    flag: str | None = None
    path: bool = False  # a path: relative values resolve against the file's dir

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"


S = Setting
SETTINGS: tuple[Setting, ...] = (
    S("server", "listen", _listen_list, ("127.0.0.1:8080",),
      "Plain HTTP listeners; loopback by default so nothing is exposed by "
      "accident.", "--listen"),
    S("server", "root", _optional_str, "public",
      "Document root; Laravel keeps its front controller in public/.", "--root",
      path=True),
    S("server", "workers", _workers, "auto",
      '"auto" = one per CPU: each worker runs one PHP request at a time.',
      "--workers"),
    S("server", "max_requests", _int(0), 0,
      "Recycle a worker after N requests (0 = never, PHP-FPM's default); "
      "max_worker_memory catches leaks more precisely.", "--max-requests"),
    S("server", "max_worker_memory", parse_size, "512M",
      "Recycle a worker above this RSS (0 = never); well above Laravel's "
      "typical 50-100 MB.", "--max-worker-memory"),
    S("server", "max_body_size", parse_size, "100M",
      "Largest request body; Cloudflare's default upload cap, bigger files "
      "belong in object storage.", "--max-body-size"),
    S("server", "https", _bool, False,
      "Set HTTPS=on for PHP: a TLS-terminating load balancer sits in front.",
      "--https"),
    S("server", "io", _choice("auto", "uring", "epoll"), "auto",
      '"auto" probes io_uring and falls back to epoll when it is refused.',
      "--io"),
    S("server", "request_timeout", _number(0.001), 60,
      "Seconds a PHP request may run; nginx's fastcgi_read_timeout default.",
      "--request-timeout"),
    S("server", "header_timeout", _number(0.001), 10,
      "Seconds to receive request headers; short to shed slowloris clients.",
      "--header-timeout"),
    S("server", "keepalive_timeout", _number(0), 75,
      "Idle keep-alive seconds (nginx default); longer than a load balancer's "
      "60 s so it closes first.", "--keepalive-timeout"),
    S("server", "body_timeout", _number(0.001), 60,
      "Seconds allowed between two body reads; nginx's client_body_timeout.",
      "--body-timeout"),
    S("worker", "script", _optional_str, None,
      "Worker-mode PHP script booting the app once; absent = classic mode.",
      "--worker-script", path=True),
    S("worker", "app_base", _optional_str, None,
      "Application base directory (Laravel's base_path()).", "--app-base",
      path=True),
    S("worker", "ini", _ini, "",
      'php.ini overrides: "key=value" lines or a table; the line '
      '"askr.php_ini = system" (or none, or a path) picks the base php.ini '
      '(default system: the distribution\'s, as php-cli reads it).'),
    S("tls", "cert", _optional_str, None,
      "PEM certificate for the TLS listeners.", "--tls-cert", path=True),
    S("tls", "key", _optional_str, None,
      "PEM private key matching cert.", "--tls-key", path=True),
    S("tls", "chain", _optional_str, None,
      "PEM intermediate certificates sent after cert.", None, path=True),
    S("tls", "listen", _listen_list, (),
      "HTTPS listeners (HTTP/1.1 and h2 by ALPN); none by default.",
      "--tls-listen"),
    S("admin", "listen", _optional_address, "127.0.0.1:9180",
      'Admin API and metrics; loopback only by default, "" disables.',
      "--admin-listen"),
    S("admin", "allow_public", _bool, False,
      "Allow a non-loopback admin address: the admin API has no "
      "authentication."),
    S("reload", "canary", _bool, False,
      "On reload, start one new worker first and watch it before the rest.",
      "--canary"),
    S("reload", "canary_seconds", _number(0), 30,
      "How long the canary serves before the reload proceeds."),
    S("reload", "error_rate", _number(0, 1), 0.05,
      "Canary 5xx share above which the reload is rolled back."),
    S("queue", "workers", _int(0), 0,
      "Queue worker processes (0 = none).", "--queue-workers"),
    S("queue", "script", _optional_str, None,
      "PHP script running queue jobs.", None, path=True),
    S("queue", "max_jobs", _int(0), 1000,
      "Recycle a queue worker after N jobs (0 = never), like queue:work "
      "--max-jobs."),
    S("queue", "max_time", _number(0), 3600,
      "Recycle a queue worker after N seconds (0 = never)."),
    S("scheduler", "script", _optional_str, None,
      "PHP script run every interval (Laravel's schedule:run); absent = off.",
      None, path=True),
    S("scheduler", "interval", _number(0.001), 60,
      "Seconds between scheduler runs; cron's minute.  Tests shorten it."),
    S("log", "level", _choice("debug", "info", "warning", "error", "critical"),
      "info", "Log level of the askr.* loggers.", "--log-level"),
    S("log", "access", _bool, True,
      "One askr.access line per response.", "--access-log"),
    S("log", "format", _choice("text", "json"), "text",
      '"json" for log shippers, one object per line.', "--log-format"),
)
del S

BY_KEY = {s.key: s for s in SETTINGS}
SECTIONS = tuple(dict.fromkeys(s.section for s in SETTINGS))

_SECTION_CLASSES = {
    name: dataclasses.make_dataclass(
        name.capitalize() + "Config",
        [(s.name, Any) for s in SETTINGS if s.section == name],
        frozen=True,
    )
    for name in SECTIONS
}


@dataclass(frozen=True)
class Config:
    server: Any
    worker: Any
    tls: Any
    admin: Any
    reload: Any
    queue: Any
    scheduler: Any
    log: Any
    path: str | None = None
    lines: dict[tuple[str, str], int] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)
    warnings: tuple[Problem, ...] = dataclasses.field(default=(), compare=False)
    overridden: frozenset[str] = dataclasses.field(default=frozenset(),
                                                   compare=False, repr=False)

    @property
    def mode(self) -> str:
        return "worker" if self.worker.script else "classic"

    def items(self) -> list[tuple[str, Any]]:
        """Every resolved setting as ("section.name", value), sorted."""
        out = []
        for s in SETTINGS:
            out.append((s.key, getattr(getattr(self, s.section), s.name)))
        return sorted(out)

    def problem(self, section: str, key: str, message: str,
                severity: str = "error") -> Problem:
        """A Problem pointing at the line where section.key was written."""
        setting = BY_KEY.get(f"{section}.{key}")
        if setting is not None and setting.key in self.overridden:
            return Problem(message, CLI_SOURCE, None, section,
                           f"{key} ({setting.flag})", severity)
        line = self.lines.get((section, key)) or self.lines.get((section, ""))
        return Problem(message, self.path or CLI_SOURCE, line, section, key,
                       severity)


def _locate(text: str) -> dict[tuple[str, str], int]:
    """Map (section, key) and (section, "") to the line where each appears."""
    found: dict[tuple[str, str], int] = {}
    section = ""
    in_string = False
    header = re.compile(r"\s*\[\[?\s*([^\]\s]+)\s*\]\]?")
    assign = re.compile(r"""\s*["']?([A-Za-z0-9_.\-]+)["']?\s*=""")

    for n, line in enumerate(text.splitlines(), 1):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        if quotes % 2 == 1:
            in_string = True
        m = header.match(line)
        if m:
            section = m.group(1)
            found.setdefault((section, ""), n)
            if "." in section:
                parent, _, child = section.rpartition(".")
                found.setdefault((parent, child), n)
            continue
        m = assign.match(line)
        if m:
            key = m.group(1)
            if "." in key and section == "":
                sect, _, key = key.rpartition(".")
                found.setdefault((sect, key), n)
            found.setdefault((section, key), n)
    return found


def _syntax_problem(path: str, text: str,
                    exc: tomllib.TOMLDecodeError) -> Problem:
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    line = int(m.group(1)) if m else None
    if "(at end of document)" in msg:
        line = max(1, len(text.splitlines()))
        msg = msg.replace("(at end of document)", "at end of file")
    msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
    if m:
        msg = f"TOML syntax: {msg} (column {m.group(2)})"
    else:
        msg = "TOML syntax: " + msg
    return Problem(msg, path, line)


def _close(word: str, options: list[str] | tuple[str, ...]) -> str:
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f' (did you mean "{near[0]}"?)' if near else ""


MAX_CONFIG_BYTES = 1 << 20   # far above any real askr.toml


def _read_config_text(file: str) -> str:
    """The file's text; a device, a FIFO or a huge file is refused rather
    than read (``config-check /dev/zero`` used to read for ever)."""
    try:
        with open(file, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ConfigError([Problem("not a regular file", file)])
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read: {exc}", file)]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(
            f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not an askr.toml",
            file)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(f"cannot read: {exc}", file)]) from None


def load(path: str | os.PathLike[str] | None,
         overrides: dict[str, Any] | None = None) -> Config:
    """Read askr.toml at ``path`` (None: defaults only) and apply overrides.

    ``overrides`` maps "section.name" to a value from the command line;
    relative paths in it resolve against the current directory.
    Raises ConfigError listing every problem found.
    """
    overrides = overrides or {}
    problems: list[Problem] = []
    data: dict[str, Any] = {}
    lines: dict[tuple[str, str], int] = {}
    file = str(path) if path is not None else None
    base = Path(file).resolve().parent if file else Path.cwd()

    if file is not None:
        text = _read_config_text(file)
        lines = _locate(text)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([_syntax_problem(file, text, exc)]) from None

    def where(section: str, key: str) -> int | None:
        return lines.get((section, key)) or lines.get((section, ""))

    # Unknown sections and keys first: a typo must not pass silently.
    for section, table in data.items():
        if section not in SECTIONS:
            problems.append(Problem(
                "unknown section" + _close(section, SECTIONS), file or "",
                where(section, ""), section))
            continue
        if not isinstance(table, dict):
            problems.append(Problem(f"expected a [{section}] table", file or "",
                                    where("", section), section))
            continue
        names = [s.name for s in SETTINGS if s.section == section]
        for key in table:
            if key not in names:
                problems.append(Problem(
                    "unknown key" + _close(key, names), file or "",
                    where(section, key), section, key))

    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw, source, origin = s.default, file, base
        table = data.get(s.section)
        if isinstance(table, dict) and s.name in table:
            raw = table[s.name]
        if s.key in overrides:
            raw, source, origin = overrides[s.key], CLI_SOURCE, Path.cwd()
        try:
            value = s.check(raw)
        except Invalid as exc:
            key = s.name if source != CLI_SOURCE else f"{s.name} ({s.flag})"
            line = where(s.section, s.name) if source == file else None
            problems.append(Problem(f"expected {exc}", source or CLI_SOURCE,
                                    line, s.section, key))
            value = None
        if s.path and isinstance(value, str):
            value = str((origin / value).resolve())
        values[s.key] = value

    cfg = Config(
        **{name: _SECTION_CLASSES[name](**{
            s.name: values[s.key] for s in SETTINGS if s.section == name})
           for name in SECTIONS},
        path=file,
        lines=lines,
        overridden=frozenset(k for k in overrides if k in BY_KEY),
    )
    # Rules spanning settings skip any value that already failed (None).
    problems += _cross_checks(cfg)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(problems)
    return dataclasses.replace(cfg, warnings=tuple(problems))


def _cross_checks(cfg: Config) -> list[Problem]:
    """Rules spanning several settings."""
    out = []
    tls = cfg.tls
    server_listen = cfg.server.listen or ()
    tls_listen = tls.listen or ()

    cores = os.cpu_count() or 1
    workers = cfg.server.workers
    if isinstance(workers, int) and workers > 8 * cores:
        out.append(cfg.problem(
            "server", "workers",
            f"{workers} workers on {cores} cores: each is a PHP "
            "runtime of tens of MB, and more than a few per core only help "
            "PHP that waits on I/O", "warning"))
    if tls_listen and not (tls.cert and tls.key):
        out.append(cfg.problem("tls", "listen",
                               "TLS listeners need both cert and key"))
    if bool(tls.cert) != bool(tls.key):
        missing = "key" if tls.cert else "cert"
        out.append(cfg.problem("tls", missing, "missing: cert and key go together"))
    if cfg.server.listen == () and tls.listen == ():
        out.append(cfg.problem("server", "listen",
                               "nothing to listen on: server.listen and "
                               "tls.listen are both empty"))

    admin = cfg.admin.listen
    if admin and not admin.is_loopback and not cfg.admin.allow_public:
        out.append(cfg.problem(
            "admin", "listen",
            f"{admin} is not a loopback address; the admin API has no authentication."
            " Use 127.0.0.1 or set allow_public = true behind a firewall"))

    seen: dict[tuple[str, int], str] = {}
    for section, addrs in (("server", server_listen), ("tls", tls_listen),
                           ("admin", (admin,) if admin else ())):
        for a in addrs:
            if a.port == 0:
                continue
            if (a.host, a.port) in seen:
                out.append(cfg.problem(section, "listen", f"{a} is already used by "
                                       f"[{seen[a.host, a.port]}] listen"))
            seen[a.host, a.port] = section

    if cfg.queue.workers and not cfg.queue.script:
        out.append(cfg.problem("queue", "script",
                               "queue.workers > 0 needs a queue script"))
    if cfg.worker.app_base and not cfg.worker.script:
        out.append(cfg.problem("worker", "app_base",
                               "app_base is ignored without a worker script",
                               "warning"))
    return out


# Deeper checks for `askr config-check`: the file system, certificates and
# ports.  Separate from load() so serving does not pay for them twice.


def _check_readable(cfg: Config, section: str, key: str, path: str | None,
                    want_dir: bool) -> list[Problem]:
    if not path:
        return []
    p = Path(path)
    kind = "directory" if want_dir else "file"
    if not p.exists():
        return [cfg.problem(section, key, f"{kind} {path} does not exist")]
    if want_dir != p.is_dir():
        return [cfg.problem(section, key, f"{path} is not a {kind}")]
    if not os.access(p, os.R_OK | (os.X_OK if want_dir else 0)):
        return [cfg.problem(section, key, f"{path} is not readable")]
    return []


def ini_extensions(ini: str) -> list[tuple[str, str]]:
    """(directive, value) for every extension= / zend_extension= line."""
    out = []
    for line in ini.splitlines():
        name, sep, value = line.partition("=")
        name = name.strip()
        if sep and name in ("extension", "zend_extension"):
            out.append((name, value.strip().strip("\"'")))
    return out


def ini_value(ini: str, name: str) -> str | None:
    """The last value ini gives to name (PHP keeps the last one), or None."""
    found = None
    for line in ini.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            found = value.strip().strip("\"'")
    return found


def extension_path(value: str, extension_dir: str | None) -> Path | None:
    """Where PHP looks for an extension named in ini; None if unknowable."""
    if "/" in value:
        return Path(value)
    if not extension_dir:
        return None
    name = value if value.endswith(".so") else value + ".so"
    return Path(extension_dir) / name


def check_bind(addr: Address) -> str | None:
    """Try binding addr (SO_REUSEADDR, then close); None or why it failed."""
    sock = socket.socket(addr.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if addr.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((addr.host, addr.port))
        sock.listen(1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"{addr} is already in use by another process"
        if exc.errno == errno.EACCES:
            return (f"{addr}: port below 1024 needs root or CAP_NET_BIND_SERVICE")
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"{addr}: no such address on this host"
        return f"{addr}: cannot bind: {exc.strerror}"
    finally:
        sock.close()
    return None


def check(cfg: Config, *, extension_dir: str | None = None,
          bind: bool = True) -> list[Problem]:
    """Everything config-check verifies beyond load(); errors and warnings."""
    from askr import certs

    out = _check_readable(cfg, "server", "root", cfg.server.root, True)
    out += _check_readable(cfg, "worker", "script", cfg.worker.script, False)
    out += _check_readable(cfg, "worker", "app_base", cfg.worker.app_base, True)
    out += _check_readable(cfg, "queue", "script", cfg.queue.script, False)
    out += _check_readable(cfg, "scheduler", "script", cfg.scheduler.script, False)

    extension_dir = ini_value(cfg.worker.ini, "extension_dir") or extension_dir
    for directive, value in ini_extensions(cfg.worker.ini):
        where = extension_path(value, extension_dir)
        if where is None:
            out.append(cfg.problem(
                "worker", "ini", f"{directive}={value}: PHP extension dir unknown, "
                "not checked", "warning"))
        elif not where.is_file():
            out.append(cfg.problem(
                "worker", "ini", f"{directive}={value}: {where} does not exist"))

    tls = cfg.tls
    if tls.cert and tls.key:
        files = _check_readable(cfg, "tls", "cert", tls.cert, False)
        files += _check_readable(cfg, "tls", "key", tls.key, False)
        files += _check_readable(cfg, "tls", "chain", tls.chain, False)
        out += files
        if not files:
            for key, severity, message in certs.check_pair(tls.cert, tls.key,
                                                           tls.chain):
                out.append(cfg.problem("tls", key, message, severity))

    if bind:
        for section, addrs in (("server", cfg.server.listen),
                               ("tls", tls.listen),
                               ("admin", (cfg.admin.listen,)
                                if cfg.admin.listen else ())):
            for addr in addrs:
                why = check_bind(addr)
                if why:
                    out.append(cfg.problem(section, "listen", why))
    return out


def reference() -> str:
    """Every setting as Markdown, one table per section, for the docs."""
    out = ["# askr.toml settings", ""]
    for section in SECTIONS:
        out += [f"## [{section}]", "", "| key | default | flag | why |",
                "|---|---|---|---|"]
        for s in SETTINGS:
            if s.section != section:
                continue
            default = s.default if s.default not in (None, "", ()) else "-"
            if isinstance(default, tuple):
                default = ", ".join(default)
            out.append(f"| {s.name} | {default} | {s.flag or '-'} | {s.doc} |")
        out.append("")
    return "\n".join(out)
