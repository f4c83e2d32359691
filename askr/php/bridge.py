"""Python face of the embedded PHP interpreter (one per worker process).

Runs after fork(): the master never loads PHP.  Each call hands a whole
request to C in one crossing (CGI variables packed "K\\0V\\0K\\0V\\0", body
bytes, spool fd); C answers PHP's questions from that and buffers output,
headers and status, then calls job.send() once in the usual case.  See
askr/php/_askr_sapi.c for the C side and docs/DESIGN.md for the job API.

Worker mode: bridge.run_worker(job) runs job.env's SCRIPT_FILENAME as a
long-lived script.  `job` is the boot job: it receives (as one
send(last=True)) whatever the script prints before its first
askr_handle_request() call, and its next_job() supplies the first real
request; each later request is fetched with the previous request's
next_job().  Result: "done" when the script ended after next_job() returned
None, "fatal" when a fatal error (or timeout) ended it, "exit" when it
ended on its own (exit() or falling off the end) while still being fed.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from typing import Any

try:
    from askr.php._askr_php import ffi, lib
except ImportError as exc:  # not built yet, or built against another PHP
    raise ImportError(
        f"askr's PHP bridge is not built or cannot load libphp ({exc}); "
        "run `python -m askr.build` (needs libphp8.2-embed and php8.2-dev)"
    ) from exc

logger = logging.getLogger("askr.php")

_log: Callable[[int, str], None] | None = None
_started = False
# references C may still hold pointers into: the current worker job's
# handle, env buffer and body buffer
_worker_live: list[Any] = []

_RESULTS = {0: "done", 1: "fatal", 2: "exit"}


class PHPError(RuntimeError):
    """PHP could not be started or could not start a request."""


def _pack_env(env: list[tuple[bytes, bytes]]) -> bytes:
    if not env:
        return b""
    return b"\0".join(itertools.chain.from_iterable(env)) + b"\0"


def _env_of(job: Any) -> bytes:
    """job.env packed; a job may carry it ready as `env_packed` (optional,
    NUL-separated exactly as _pack_env makes it) to save the join."""
    packed = getattr(job, "env_packed", None)
    return packed if packed is not None else _pack_env(job.env)


def _callback_error(exc_type, exc, tb) -> None:
    logger.error(
        "askr.php: exception in a bridge callback", exc_info=(exc_type, exc, tb)
    )


@ffi.def_extern(onerror=_callback_error)
def askr_py_send(handle, status, headers, headers_len, data, data_len, last):
    job = ffi.from_handle(handle)
    hdrs = None
    if headers != ffi.NULL:
        hdrs = ffi.unpack(headers, headers_len).split(b"\0")[:-1] if headers_len else []
    body = ffi.unpack(data, data_len) if data_len else b""
    # last: 0 more to come, 1 complete, 2 complete while PHP runs on
    # (fastcgi_finish_request); 2 stays truthy for jobs that test `if last`.
    return 0 if job.send(status, hdrs, body, last) is False else 1


@ffi.def_extern(onerror=_callback_error)
def askr_py_log(level, message, message_len):
    text = ffi.unpack(message, message_len).decode("utf-8", "replace")
    if _log is not None:
        _log(level, text)
    else:
        logger.log(level, "%s", text)


@ffi.def_extern(onerror=_callback_error)
def askr_py_next_job(handle, out):
    job = ffi.from_handle(handle)
    nxt = job.next_job()
    if nxt is None:
        return 0
    _fill(out, nxt)
    return 1


def _fill(out, job: Any) -> None:
    handle = ffi.new_handle(job)
    env = ffi.from_buffer(_env_of(job))
    out.job = handle
    out.env = env
    out.env_len = len(env)
    body = job.body
    if body:
        body = ffi.from_buffer(body)
        out.body = body
        out.body_len = len(body)
    out.body_fd = job.body_fd
    _worker_live[:] = [handle, env, body, job]


def build_info() -> dict:
    """Facts about the PHP this bridge was built against (no startup needed)."""
    info = ffi.new("askr_build_info *")
    lib.askr_get_build_info(info)
    return {
        "version": ffi.string(info.version).decode(),
        "version_id": info.version_id,
        "zts": bool(info.zts),
        "zend_signals": bool(info.zend_signals),
        "debug": bool(info.debug),
        "extension_dir": ffi.string(info.extension_dir).decode(),
        "sapi": "askr",
        "startup_sapi_name": ffi.string(info.startup_name).decode(),
    }


_PHP_INI_RE = re.compile(r"^\s*askr\.php_ini\s*=\s*\"?([^\"\n]*?)\"?\s*$", re.MULTILINE)
_php_ini_path: bytes | None = None


def startup(ini: str, log: Callable[[int, str], None]) -> None:
    """Start PHP once in this process with the [worker] ini text.

    By default no php.ini and no conf.d directory are read (like `php -n`):
    the ini text is the whole configuration.  The line
    `askr.php_ini = system` in it makes PHP first read the php.ini and
    conf.d its build expects (Debian: /etc/php/8.2/embed, where apt turns
    extensions on); `askr.php_ini = /path/php.ini` reads that file.
    """
    global _log, _started, _php_ini_path
    _log = log
    if _started:
        return
    data = ini.encode()
    m = _PHP_INI_RE.search(ini)
    mode = m.group(1).strip() if m else ""
    _php_ini_path = mode.encode() if mode and mode != "none" else None
    php_ini = _php_ini_path if _php_ini_path is not None else ffi.NULL
    if lib.askr_startup(data, len(data), php_ini) != 0:
        raise PHPError("PHP module start-up failed (see the log for PHP's reason)")
    _started = True


def set_request_timeout(seconds: float) -> None:
    """Wall-clock limit per request; such requests end with 504.  0 disables."""
    lib.askr_set_request_timeout(float(seconds))


def run_script(job: Any) -> None:
    """Classic mode: run job.env's SCRIPT_FILENAME for one request."""
    handle = ffi.new_handle(job)
    env = _env_of(job)
    body = job.body or b""
    rc = lib.askr_run_script(handle, env, len(env), body, len(body), job.body_fd)
    if rc != 0:
        raise PHPError(f"PHP request start-up failed (code {rc})")


def run_worker(job: Any) -> str:
    """Worker mode: run the long-lived script; "done" | "fatal" | "exit"."""
    boot = ffi.new("askr_job_in *")
    handle = ffi.new_handle(job)
    env = ffi.from_buffer(_env_of(job))
    body = ffi.from_buffer(job.body or b"")
    boot.job = handle
    boot.env = env
    boot.env_len = len(env)
    boot.body = body
    boot.body_len = len(body)
    boot.body_fd = job.body_fd
    try:
        rc = lib.askr_run_worker(boot)
    finally:
        _worker_live.clear()
    if rc < 0:
        raise PHPError(f"PHP worker start-up failed (code {rc})")
    return _RESULTS[rc]


def install_stop_signal() -> None:
    """SIGTERM/SIGINT set a C-level flag that PHP reads as askr_should_stop().

    For long-running scripts (queue worker, scheduler): no Python code runs
    while they do, so a Python signal handler would fire only at the end.
    """
    lib.askr_install_stop_signal()


def stop_requested() -> bool:
    """Whether SIGTERM/SIGINT arrived since install_stop_signal()."""
    return bool(lib.askr_stop_requested())


def shutdown() -> None:
    """Shut PHP down (module shutdown: extensions' MSHUTDOWN run)."""
    global _started
    if _started:
        lib.askr_shutdown()
        _started = False
