"""One worker process: an event loop and an embedded PHP interpreter.

Which side of fork() each step runs on: the master binds the sockets and
forks; everything here runs in the child, after the fork.  The io_uring
ring is created here (a ring must not be shared between processes) and so
is PHP (module start-up after the fork means a reloaded worker never runs
bytecode that opcache cached for the previous code, and a symlinked root
is resolved afresh by the master for each generation).

Classic mode: ``next_job()`` -> ``bridge.run_script(job)``, repeated.
Worker mode: ``bridge.run_worker(boot)`` runs the worker script once; the
script calls ``askr_handle_request()``, which calls ``boot.next_job()``,
which runs the loop until the next request.  A fatal error in the script
ends that request with a 500 and the script is started again; a script
that dies before serving anything is a boot failure, reported with its
own exit code so the master backs off instead of fork-looping.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from askr import control, errors
from askr.connection import Limits, Listener, Server

log = logging.getLogger("askr.worker")
php_log = logging.getLogger("askr.php")

# Stats go to the master at most this often; each packet is a syscall.
STATS_EVERY = 0.25
# An idle worker still reports this often (RSS, liveness).
HEARTBEAT = 1.0

SIGTERM_SET = {signal.SIGTERM}


class WorkerServer(Server):
    """The connection server plus what a supervised process adds: signals,
    the control channel and the request quota."""

    def __init__(self, *args: Any, spec: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.stop_reason: str | None = None
        self.recycle_asked = False
        self.last_stats = 0.0
        self.busy_since: float | None = None
        self.durations: list[float] = []
        self.status_counts: dict[str, int] = {}
        self.reported_requests = 0
        self.reported_busy: float | None = None
        self.request_timeout = 0.0

    def next_job(self):  # type: ignore[override]
        self.busy_since = None
        job = super().next_job()
        if job is not None:
            self.busy_since = time.time()
            # The master watches busy_since for its request-timeout
            # backstop: tell it when this worker turns busy.  Under steady
            # load the last packet already said "busy" (an earlier start,
            # at most STATS_EVERY old), which is close enough.
            if self.reported_busy is None:
                self.report(force=True)
        return job

    def idle_hook(self) -> None:
        if not self.draining and SIGTERM_SET & signal.sigpending():
            signal.sigtimedwait(SIGTERM_SET, 0)
            self.stop("drain")
        if self.requests != self.reported_requests:
            self.report(force=False)
        elif time.monotonic() - self.last_stats > HEARTBEAT:
            self.report(force=True)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            log.info("worker %d draining: %s", os.getpid(), reason)
            if self.spec is not None and self.spec.control is not None:
                control.exiting(self.spec.control, reason)
        self.drain()

    def on_request(self, job: Any, status: int, elapsed: float) -> None:
        self.durations.append(elapsed)
        klass = f"{status // 100}xx" if 100 <= status < 600 else "other"
        self.status_counts[klass] = self.status_counts.get(klass, 0) + 1
        if (status == 504 and self.request_timeout
                and elapsed >= self.request_timeout * 0.9):
            # The bridge ended a request at request_timeout.  PHP is
            # usable again, but whatever the script was stuck in may
            # have left the process in a bad state: replace it.
            log.warning("worker %d: request timeout after %.1fs (%s %s); "
                        "worker will be replaced", os.getpid(), elapsed,
                        job.method, job.target.decode("latin-1"))
            self.stop("request timeout")
        quota = self.spec.max_requests if self.spec is not None else 0
        if quota and self.requests >= quota:
            self.quota_reached(quota)

    def quota_reached(self, quota: int) -> None:
        """Ask the master for a successor and keep serving until it drains
        us (it recycles one worker at a time).  Alone, or still not
        drained at twice the quota, leave on our own."""
        control_sock = self.spec.control if self.spec is not None else None
        if control_sock is None or self.requests >= 2 * quota:
            self.stop("max_requests")
        elif not self.recycle_asked:
            self.recycle_asked = True
            log.info("worker %d: max_requests reached (%d), asking for a "
                     "successor", os.getpid(), quota)
            control.recycle(control_sock, "max_requests")

    def report(self, force: bool) -> None:
        spec = self.spec
        if spec is None or spec.control is None:
            return
        now = time.monotonic()
        if not force and now - self.last_stats < STATS_EVERY:
            return
        self.last_stats = now
        self.reported_requests = self.requests
        self.reported_busy = self.busy_since
        durations, self.durations = self.durations[-500:], []
        control.stats(spec.control, requests=self.requests,
                      errors5xx=self.errors5xx, rss=control.rss_bytes(),
                      busy_since=self.busy_since, durations=durations,
                      status=self.status_counts, io=self.backend.name)


class BootJob:
    """The long-lived job that runs the worker-mode script."""

    body = b""
    body_fd = -1

    def __init__(self, server: WorkerServer, env: list, on_boot: Any) -> None:
        self.server = server
        self.env = env
        self.on_boot = on_boot
        self.booted = False

    def send(self, status: int, headers: Any, data: bytes, last: bool) -> bool:
        # Output outside any request (echo while booting) has no client.
        if data:
            php_log.info("worker script output outside a request: %r",
                         data[:200])
        return True

    def next_job(self):
        try:
            if not self.booted:
                self.booted = True
                self.on_boot()
            return self.server.next_job()
        except Exception:
            log.exception("worker loop failed; stopping this worker")
            return None


def php_ini(ini: str | None) -> str:
    """The ini text for PHP: the distribution's php.ini and conf.d are
    read first (as php-fpm reads its own), unless the config says
    otherwise with an ``askr.php_ini = none | system | /path`` line."""
    ini = ini or ""
    if "askr.php_ini" not in ini:
        ini = "askr.php_ini = system\n" + ini
    return ini


def _php_logger(level: int, message: str) -> None:
    php_log.log(level, "%s", message.rstrip())


# Built by the master before it forks (askr.serve), so that every worker
# shares the same session-ticket keys and a client resumes its TLS session
# on whichever worker it lands.
TLS_CONTEXT: Any = None


def _tls_context(cfg: Any) -> Any:
    """The master's context, unless the files changed since (a renewed
    certificate is picked up by the workers of the next reload)."""
    if TLS_CONTEXT is None:
        return None
    try:
        if TLS_CONTEXT.reload_if_changed():
            log.info("tls: certificate files changed; this worker serves "
                     "the renewed certificate")
    except Exception as exc:  # noqa: BLE001 (keep serving the old pair)
        log.error("tls: renewed certificate unusable, keeping the old: %s",
                  exc)
    return TLS_CONTEXT.context


def pin_to_code(path: str, root: str, code: str | None) -> str:
    """``path`` as it was when this worker's generation was created.

    The master resolves the document root once per generation (``code``
    is realpath(root) then), so that a worker of an old generation keeps
    serving the old release after ``current`` moved.  The worker script
    and app base usually sit under the same symlink (``current/...``):
    find the deepest ancestor of ``root`` that also contains ``path`` and
    swap it for its resolved form, derived from ``code``.
    """
    if not code:
        return os.path.realpath(path)
    path, root = os.path.abspath(path), os.path.abspath(root)
    ancestor, up = root, 0
    while ancestor != os.path.dirname(ancestor):
        if path == ancestor or path.startswith(ancestor + os.sep):
            resolved = code
            for _ in range(up):
                resolved = os.path.dirname(resolved)
            return os.path.realpath(resolved + path[len(ancestor):])
        ancestor, up = os.path.dirname(ancestor), up + 1
    return os.path.realpath(path)


def _boot_env(script: str, root: str, app_base: str | None) -> list:
    env = [(k.encode(), v.encode(errors="surrogateescape"))
           for k, v in os.environ.items() if not k.startswith("ASKR_")]
    env += [
        (b"SCRIPT_FILENAME", script.encode()),
        (b"SCRIPT_NAME", os.path.basename(script).encode()),
        (b"PHP_SELF", os.path.basename(script).encode()),
        (b"DOCUMENT_ROOT", root.encode()),
        (b"ASKR_APP_BASE", (app_base or os.path.dirname(script)).encode()),
        (b"ASKR_WORKER", b"1"),
    ]
    return env


def main(spec: Any) -> int:
    """Worker target for the supervisor; returns the exit code."""
    from askr.php import bridge
    from askr.uring import open_backend

    cfg = spec.config
    server_cfg = cfg.server
    root = os.path.realpath(spec.code or server_cfg.root)

    try:
        backend = open_backend(server_cfg.io)
    except OSError as exc:
        log.error("worker %d: io backend %s unusable: %s", os.getpid(),
                  server_cfg.io, exc)
        return errors.RING_SETUP_FAILED

    try:
        bridge.startup(php_ini(cfg.worker.ini), _php_logger)
    except Exception as exc:  # noqa: BLE001 - reported with exit code
        log.error("worker %d: PHP start-up failed: %s", os.getpid(), exc)
        return errors.PHP_INIT_FAILED
    # The master's setting wins: it is what its own backstop uses.
    request_timeout = float(spec.request_timeout or server_cfg.request_timeout
                            or 0)
    if request_timeout:
        bridge.set_request_timeout(request_timeout)

    tls_context = _tls_context(cfg)
    listeners = [Listener(s) for s in spec.listeners]
    listeners += [Listener(s, tls_context) for s in spec.tls_listeners]
    server = WorkerServer(
        backend, listeners, root=root, limits=Limits(cfg),
        gate_accept=int(server_cfg.workers or 1) > 1,
        access_log_on=bool(cfg.log.access), worker_id=spec.index, spec=spec)
    server.on_finished = server.on_request
    server.request_timeout = request_timeout

    # SIGTERM stays blocked and is polled between requests: delivered while
    # PHP runs, it would cut short a sleep() or a blocking read of the
    # request in flight, which a graceful drain must let finish.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGTERM_SET)
    log.info("worker %d: %s mode, io %s, root %s", os.getpid(), cfg.mode,
             backend.name, root)

    def ready() -> None:
        control.ready(spec.control)

    try:
        if cfg.worker.script:
            code = _run_worker_mode(bridge, server, cfg, root, ready)
        else:
            ready()
            while (job := server.next_job()) is not None:
                bridge.run_script(job)
            code = errors.OK
    finally:
        server.report(force=True)
        server.shutdown()
        bridge.shutdown()
    return code


# A script that keeps dying right after start is not restarted forever.
RESTART_LIMIT = 20


def _run_worker_mode(bridge: Any, server: WorkerServer, cfg: Any, root: str,
                     ready: Any) -> int:
    code = server.spec.code if server.spec is not None else None
    script = pin_to_code(cfg.worker.script, cfg.server.root, code)
    app_base = cfg.worker.app_base
    if app_base:
        app_base = pin_to_code(app_base, cfg.server.root, code)
    boot = BootJob(server, _boot_env(script, root, app_base), ready)
    restarts = 0
    while True:
        served_before = server.requests
        outcome = bridge.run_worker(boot)
        if server.draining and not server.conns and not server.ready:
            return errors.OK
        if not boot.booted:
            log.error("worker script %s ended (%s) before serving; "
                      "boot failed", script, outcome)
            return errors.WORKER_BOOT_FAILED
        if outcome != "fatal":
            # The script returned on its own: let the master replace us.
            log.warning("worker script %s returned (%s); worker exits",
                        script, outcome)
            server.stop("script returned")
            server.report(force=True)
            return errors.OK
        restarts = restarts + 1 if server.requests == served_before else 0
        if restarts > RESTART_LIMIT:
            log.error("worker script %s keeps failing; worker exits", script)
            return errors.WORKER_BOOT_FAILED
        log.warning("worker script %s restarted after a fatal error", script)
