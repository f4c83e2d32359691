"""The master process: binds sockets, forks and supervises workers.

Facts
  * The listen sockets are bound once, here, before any fork, and stay open
    for the master's whole life; every worker inherits them.  A reload or a
    recycled worker therefore never closes a listening socket, and the
    kernel queues connections while no worker is accepting.
  * Workers are forked and then call a *target* (``WorkerSpec`` -> never
    returns).  Everything that must be fresh per worker (io_uring ring, PHP
    runtime, the application's code) is created by the target, on the
    child's side of the fork; the master holds no PHP and no ring, so the
    code on disk at fork time is what a new worker runs.
  * Workers talk to the master over a SEQPACKET control channel (ready,
    stats, recycle, exiting; see ``askr.control``) and are told things by
    signals.

Strategy
  * Signal handlers only append to a list; ``signal.set_wakeup_fd`` wakes
    the selector.  One loop pass: wait on control sockets + wakeup pipe +
    admin sockets, dispatch ``handle_<signame>``, then housekeeping in a
    fixed order: reap -> kill the overdue -> replace the bloated ->
    recycle one worker per pool that asked (max_requests) -> drain
    the replaced -> advance a reload -> bring pools back to their count.
  * A worker counts as alive only once it reported ready.  A worker that
    dies before ready makes its pool back off exponentially, and only one
    worker is forked per back-off step, so a broken app cannot fork-bomb.
  * Replacing a worker (reload, memory limit) is "fresh first": fork the
    successor, wait for its ready, only then SIGTERM the predecessor.
  * A reload is a small state machine advanced once per pass: one worker
    at a time; with a canary the first fresh worker is watched for
    ``canary_seconds`` before the rest follow, and a failed canary is
    swapped back to the last committed generation.  Each generation keeps
    the application root's realpath from the moment it was created, so an
    old-code worker can still be forked after the ``current`` symlink moved.

Plugging a worker in
  A ``Pool`` names a target: ``Pool("web", askr.worker.main, 4,
  config=cfg)`` in production, ``tests.fake_worker.main`` in the tests, or
  ``ExecTarget([...])`` for a program started with exec.  The target gets a
  ``WorkerSpec`` (listeners, control socket, generation, ``code`` = the
  root's realpath for that generation, its own max_requests quota, the
  pool's ``config``); what it returns (an int) becomes the exit code.

Trade-offs: the master polls every ``TICK`` seconds even when idle (cheap,
and it keeps timeouts simple); a request-timeout kill relies on the
worker's ``busy_since`` stats, so it can lag by a stats interval.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from askr import __version__, admin, control, errors, sdnotify
from askr.control import WorkerSpec
from askr.metrics import Metrics

logger = logging.getLogger(__name__)

Target = Callable[[WorkerSpec], Any]

TICK = 0.2

# Exit codes that mean "forking again would fail the same way".
HALT_CODES = (errors.PHP_INIT_FAILED, errors.RING_SETUP_FAILED)

SIGNALS = ("SIGHUP", "SIGTERM", "SIGINT", "SIGQUIT", "SIGCHLD", "SIGUSR1")


class State(Enum):
    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"


class Event(Enum):
    """What can happen to a worker while it lives (its death is the reap)."""

    READY_RECEIVED = "ready"          # it booted
    DRAIN_SENT = "drain"              # the master sent SIGTERM
    EXITING_RECEIVED = "exiting"      # it announced its own exit
    KILL_SENT = "kill"                # the master sent SIGKILL


# Every legal (state, event) pair.  A late "ready" from a worker already
# told to drain changes nothing; once draining, a worker never comes back.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.BOOTING, Event.READY_RECEIVED): State.READY,
    (State.BOOTING, Event.DRAIN_SENT): State.DRAINING,
    (State.BOOTING, Event.EXITING_RECEIVED): State.DRAINING,
    (State.BOOTING, Event.KILL_SENT): State.DRAINING,
    (State.READY, Event.DRAIN_SENT): State.DRAINING,
    (State.READY, Event.EXITING_RECEIVED): State.DRAINING,
    (State.READY, Event.KILL_SENT): State.DRAINING,
    (State.DRAINING, Event.READY_RECEIVED): State.DRAINING,
    (State.DRAINING, Event.DRAIN_SENT): State.DRAINING,
    (State.DRAINING, Event.EXITING_RECEIVED): State.DRAINING,
    (State.DRAINING, Event.KILL_SENT): State.DRAINING,
}


class TransitionError(Exception):
    """A worker state change that the table does not allow (a bug)."""


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise TransitionError(f"worker in {state.name} got {event.name}"
                              ) from None


@dataclass
class Pool:
    """A group of identical processes: the web workers or one service."""

    name: str
    target: Target
    count: int
    kind: str = "web"            # "web" (gets the listeners) | "service"
    max_requests: int = 0
    max_requests_jitter: int | None = None   # None: max_requests // 5
    config: Any = None
    # False: a successor starts only once its predecessor has exited, for
    # processes that must never run twice at once (the scheduler).
    overlap: bool = True
    failures: int = 0            # consecutive deaths before ready
    next_spawn: float = 0.0
    ever_ready: bool = False

    def jitter(self) -> int:
        if self.max_requests_jitter is None:
            return self.max_requests // 5
        return self.max_requests_jitter

    def quota(self, index: int, remaining: list[int] | None = None) -> int:
        """This worker's own max_requests.

        At start the quotas are spread by index.  A successor gets the
        quota in [max_requests, max_requests + jitter] farthest from what
        its siblings have left (``remaining``), so workers that happened to
        drift into step do not recycle together.
        """
        if self.max_requests <= 0:
            return 0
        jitter = self.jitter()
        if not remaining:
            step = max(1, jitter // max(1, self.count))
            return self.max_requests + index * step

        candidates = range(self.max_requests, self.max_requests + jitter + 1)
        return max(candidates,
                   key=lambda q: min(abs(q - r) for r in remaining))


@dataclass
class Settings:
    """The master's knobs; the config module maps its sections onto these."""

    listen: list[str] = field(default_factory=lambda: ["127.0.0.1:8080"])
    tls_listen: list[str] = field(default_factory=list)
    backlog: int = 1024
    request_timeout: float = 60.0
    timeout_grace: float = 5.0
    max_worker_memory: int = 0           # bytes of RSS, 0 = no limit
    stop_timeout: float = 30.0
    boot_timeout: float = 60.0
    backoff_base: float = 0.1
    backoff_max: float = 30.0
    canary: bool = False
    canary_seconds: float = 30.0
    error_rate: float = 0.05             # canary 5xx share that aborts
    admin_listen: str | None = "127.0.0.1:9180"
    admin_allow_public: bool = False
    root: str | None = None              # app root; realpath per generation
    io: str = "auto"


@dataclass(frozen=True)
class Generation:
    number: int
    code: str | None


@dataclass(eq=False)
class Worker:
    pid: int
    pool: Pool
    index: int
    generation: Generation
    sock: socket.socket
    started: float
    quota: int
    state: State = State.BOOTING
    ready_at: float | None = None
    requests: int = 0
    errors5xx: int = 0
    rss: int = 0
    busy_since: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    exit_reason: str | None = None   # what the worker said in "exiting"
    drain_reason: str | None = None  # why the master sent SIGTERM
    term_at: float | None = None
    killed: str | None = None        # why the master sent SIGKILL
    replaced_by: Worker | None = None
    reaped: bool = False
    recycle_asked: float | None = None  # when it asked to be recycled
    recycle_reason: str = ""


@dataclass(eq=False)
class Reload:
    generation: Generation
    canary: bool
    started: float
    phase: str = "rolling"           # "rolling" | "watching"
    fresh: Worker | None = None
    vacating: Worker | None = None   # predecessor of a no-overlap successor
    canary_worker: Worker | None = None
    watch_until: float = 0.0
    committed: bool = False


def parse_address(text: str) -> tuple[str, int]:
    """"host:port", "[v6]:port" or ":port" (all IPv4) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"listen address {text!r} has no port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


def bind_listener(text: str, backlog: int) -> socket.socket:
    """One listening socket, non-blocking, SO_REUSEADDR, v6 only for v6."""
    host, port = parse_address(text)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "[::]" next to "0.0.0.0" on the same port must both bind.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Accepted sockets inherit TCP_NODELAY.  Without it a response
        # written in two sends (head, then a file's bytes) waits for the
        # client's delayed ACK: 40 ms per static file on keep-alive.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def format_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_exit(status: int) -> tuple[int | None, str | None]:
    """waitpid status -> (exit code, signal name)."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            return None, signal.Signals(signum).name
        except ValueError:
            return None, f"signal {signum}"
    return os.waitstatus_to_exitcode(status), None


class Supervisor:
    """Runs the master loop; ``run()`` returns the process exit code."""

    def __init__(self, settings: Settings, pools: list[Pool], *,
                 resolve_code: Callable[[], str | None] | None = None,
                 on_bound: Callable[[dict[str, Any]], None] | None = None,
                 sockets: list[socket.socket] | None = None) -> None:
        self.settings = settings
        self.pools = pools
        self.resolve_code = resolve_code or self._realpath_root
        self.on_bound = on_bound
        self.listeners: list[socket.socket] = list(sockets or [])
        self.tls_listeners: list[socket.socket] = []
        self.workers: dict[int, Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.signals: list[int] = []
        self.saved_handlers: dict[int, Any] = {}
        self.wakeup: tuple[int, int] | None = None
        self.admin: admin.AdminServer | None = None
        self.metrics = Metrics(self.workers_alive)
        self.started = time.monotonic()
        self.last_generation = 1
        self.committed = Generation(1, None)
        self.reload: Reload | None = None
        self.pending_reload: bool | None = None
        self.reload_queued = False
        self.stopping = False
        self.stop_deadline = 0.0
        self.stop_killed = False
        self.exit_code: int | None = None
        self.announced_ready = False

    # ----------------------------------------------------------------- setup

    def _realpath_root(self) -> str | None:
        root = self.settings.root
        return os.path.realpath(root) if root else None

    def start(self) -> None:
        """Bind, install signal handling, then fork the first workers."""
        if not self.listeners and any(p.kind == "web" for p in self.pools):
            for text in self.settings.listen:
                self.listeners.append(self._bind(text))
            for text in self.settings.tls_listen:
                self.tls_listeners.append(self._bind(text))
        for sock in self.listeners:
            logger.info("listening address=%s", format_address(sock))
        for sock in self.tls_listeners:
            logger.info("listening address=%s tls=on", format_address(sock))

        if self.settings.admin_listen:
            host, port = parse_address(self.settings.admin_listen)
            try:
                sock = admin.bind(host, port,
                                  allow_public=self.settings.admin_allow_public)
            except ValueError as exc:
                raise errors.HaltServer(str(exc), errors.CONFIG_INVALID) from exc
            except OSError as exc:
                raise errors.HaltServer(
                    f"cannot bind admin {self.settings.admin_listen}: {exc}",
                    errors.BIND_FAILED) from exc
            self.admin = admin.AdminServer(sock, self, self.selector)
            logger.info("admin listening address=%s", format_address(sock))

        self._install_signals()
        self.committed = Generation(1, self.resolve_code())
        logger.info("master started pid=%d version=%s generation=1 code=%s",
                    os.getpid(), __version__, self.committed.code)

        if self.on_bound:
            self.on_bound(self.addresses())
        self._maintain(time.monotonic())

    def _bind(self, text: str) -> socket.socket:
        try:
            return bind_listener(text, self.settings.backlog)
        except (OSError, ValueError) as exc:
            raise errors.HaltServer(f"cannot listen on {text}: {exc}",
                                    errors.BIND_FAILED) from exc

    def addresses(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "listen": [format_address(s) for s in self.listeners],
            "tls_listen": [format_address(s) for s in self.tls_listeners],
            "admin": format_address(self.admin.sock) if self.admin else None,
        }

    def _install_signals(self) -> None:
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup = (read_fd, write_fd)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self.selector.register(read_fd, selectors.EVENT_READ, self._drain_wakeup)
        for name in SIGNALS:
            signum = getattr(signal, name)
            self.saved_handlers[signum] = signal.signal(signum,
                                                        self._enqueue_signal)

    def _enqueue_signal(self, signum: int, frame: object) -> None:
        """Signal handler: only enqueue; the main loop does the work."""
        self.signals.append(signum)

    def _drain_wakeup(self, mask: int) -> None:
        assert self.wakeup is not None
        try:
            while os.read(self.wakeup[0], 512):
                pass
        except BlockingIOError:
            pass

    # ------------------------------------------------------------- main loop

    def run(self) -> int:
        try:
            self.start()
        except errors.HaltServer as exc:
            logger.critical("master cannot start: %s", exc.reason)
            self._close()
            return exc.exit_code
        try:
            while self.exit_code is None:
                self.run_once()
        finally:
            self._close()
        logger.info("master exiting code=%d", self.exit_code)
        return self.exit_code

    def run_once(self) -> None:
        """One pass: wait, dispatch, housekeeping."""
        for key, mask in self.selector.select(self._timeout()):
            key.data(mask)

        self._dispatch_signals()
        now = time.monotonic()
        self._reap()
        self._kill_overdue(now)
        self._replace_bloated()
        self._recycle_one()
        self._drain_replaced()
        self._advance_reload(now)
        self._maintain(now)
        self._check_stopped(now)
        if self.admin:
            self.admin.expire(now)

    def _timeout(self) -> float:
        if self.signals:
            return 0.0
        now = time.monotonic()
        timeout = TICK
        for pool in self.pools:
            if pool.next_spawn > now:
                timeout = min(timeout, pool.next_spawn - now)
        return max(0.0, timeout)

    def _dispatch_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            name = signal.Signals(signum).name
            handler = getattr(self, "handle_" + name[3:].lower(), None)
            if handler is not None:
                handler()

    # --------------------------------------------------------------- signals

    def handle_chld(self) -> None:
        """Nothing: the reaper runs every pass anyway."""

    def handle_hup(self) -> None:
        logger.info("SIGHUP received: reload requested")
        self.request_reload(None)

    def handle_term(self) -> None:
        self.stop("SIGTERM")

    def handle_int(self) -> None:
        if self.stopping:
            logger.warning("second SIGINT: exiting at once")
            self.halt(errors.FAILURE)
            return
        self.stop("SIGINT")

    def handle_quit(self) -> None:
        logger.warning("SIGQUIT: exiting at once")
        self.halt(errors.FAILURE)

    def handle_usr1(self) -> None:
        """Reopen logs: pass it on to every worker."""
        for worker in self.workers.values():
            self._signal(worker, signal.SIGUSR1)

    # ------------------------------------------------------------- lifecycle

    def stop(self, why: str) -> None:
        """Graceful stop: drain everything, close listeners, then exit 0."""
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.settings.stop_timeout
        sdnotify.notify("STOPPING=1")
        logger.info("shutting down on %s: draining %d workers timeout=%.0fs",
                    why, len(self.workers), self.settings.stop_timeout)

        if self.reload is not None:
            logger.warning("reload interrupted by shutdown generation=%d",
                           self.reload.generation.number)
            self.metrics.reload("interrupted")
        self.reload = None
        self.pending_reload = None
        for worker in list(self.workers.values()):
            self._drain(worker, "shutdown")

        # Workers keep their own copies; they stop accepting on SIGTERM.
        for sock in self.listeners + self.tls_listeners:
            sock.close()
        self.listeners = []
        self.tls_listeners = []

    def halt(self, code: int) -> None:
        """Exit now: SIGKILL every worker, reap them, leave the loop."""
        self.stopping = True
        for worker in list(self.workers.values()):
            self._signal(worker, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while self.workers and time.monotonic() < deadline:
            self._reap()
            if self.workers:
                time.sleep(0.01)
        self.exit_code = code

    def _check_stopped(self, now: float) -> None:
        if not self.stopping or self.exit_code is not None:
            return
        if not self.workers:
            self.exit_code = errors.OK
            return
        if now > self.stop_deadline and not self.stop_killed:
            self.stop_killed = True
            for worker in self.workers.values():
                logger.critical("stop timeout: killing worker pid=%d",
                                worker.pid)
                worker.killed = "stop_timeout"
                self._signal(worker, signal.SIGKILL)

    def _close(self) -> None:
        for sock in self.listeners + self.tls_listeners:
            sock.close()
        if self.admin:
            self.admin.close()
        if self.wakeup:
            signal.set_wakeup_fd(-1)
            for fd in self.wakeup:
                os.close(fd)
            self.wakeup = None
        for signum, handler in self.saved_handlers.items():
            signal.signal(signum, handler)
        self.saved_handlers = {}
        self.selector.close()

    # ------------------------------------------------------------ processes

    def spawn(self, pool: Pool, index: int,
              generation: Generation) -> Worker | None:
        """Fork one worker; the child runs ``pool.target`` and never returns.

        Returns None when the fork itself fails (out of memory or process
        slots); the pool then backs off as after a boot failure.
        """
        try:
            master_end, worker_end = control.channel()
        except OSError as exc:
            self._fork_failed(pool, exc)
            return None
        siblings = [w for w in self.workers.values()
                    if w.pool is pool and w.state is not State.DRAINING]
        remaining = [max(0, w.quota - w.requests) for w in siblings if w.quota]
        quota = pool.quota(index, remaining if self.announced_ready else None)
        web = pool.kind == "web"
        spec = WorkerSpec(
            pool=pool.name, index=index, generation=generation.number,
            control=worker_end,
            listeners=list(self.listeners) if web else [],
            tls_listeners=list(self.tls_listeners) if web else [],
            code=generation.code, max_requests=quota,
            request_timeout=self.settings.request_timeout, config=pool.config)

        try:
            pid = os.fork()
        except OSError as exc:
            master_end.close()
            worker_end.close()
            self._fork_failed(pool, exc)
            return None
        if pid == 0:
            self._child(pool, spec, master_end)

        worker_end.close()
        worker = Worker(pid=pid, pool=pool, index=index, generation=generation,
                        sock=master_end, started=time.monotonic(), quota=quota)
        self.workers[pid] = worker
        self.selector.register(master_end, selectors.EVENT_READ,
                               lambda mask, w=worker: self._on_control(w))
        logger.info("worker spawned pid=%d pool=%s index=%d generation=%d "
                    "max_requests=%d", pid, pool.name, index,
                    generation.number, quota)
        return worker

    def _fork_failed(self, pool: Pool, exc: OSError) -> None:
        pool.failures += 1
        delay = min(self.settings.backoff_base * 2 ** (pool.failures - 1),
                    self.settings.backoff_max)
        pool.next_spawn = time.monotonic() + delay
        logger.critical("fork failed pool=%s error=%s retry_in=%.1fs",
                        pool.name, exc, delay)

    def _child(self, pool: Pool, spec: WorkerSpec,
               master_end: socket.socket) -> None:
        """Child side of the fork: shed the master's state, run the target."""
        code = errors.FAILURE
        try:
            signal.set_wakeup_fd(-1)
            for name in SIGNALS:
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            # Ctrl-C reaches the whole process group; the master decides.
            signal.signal(signal.SIGINT, signal.SIG_IGN)

            master_end.close()
            for other in self.workers.values():
                other.sock.close()
            if self.admin:
                self.admin.close_sockets()
            if self.wakeup:
                for fd in self.wakeup:
                    os.close(fd)
            self.selector.close()
            if pool.kind != "web":
                for sock in self.listeners + self.tls_listeners:
                    sock.close()

            result = pool.target(spec)
            code = result if isinstance(result, int) else errors.OK
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (
                errors.OK if exc.code is None else errors.FAILURE)
        except errors.HaltServer as exc:
            logger.critical("worker halting pool=%s reason=%s", spec.pool,
                            exc.reason)
            code = exc.exit_code
        except BaseException:
            logger.exception("worker target failed pool=%s", spec.pool)
            code = errors.WORKER_BOOT_FAILED
        finally:
            logging.shutdown()
            os._exit(code)

    def _signal(self, worker: Worker, signum: int) -> None:
        try:
            os.kill(worker.pid, signum)
        except ProcessLookupError:
            pass

    def _drain(self, worker: Worker, reason: str) -> None:
        """SIGTERM: finish in-flight requests and exit."""
        if worker.state is State.DRAINING and worker.term_at is not None:
            return
        worker.state = next_state(worker.state, Event.DRAIN_SENT)
        worker.drain_reason = worker.drain_reason or reason
        worker.term_at = time.monotonic()
        logger.info("worker draining pid=%d reason=%s", worker.pid, reason)
        self._signal(worker, signal.SIGTERM)

    def _kill(self, worker: Worker, reason: str) -> None:
        """SIGKILL; the worker stops counting, so its successor starts now."""
        if worker.killed:
            return
        worker.killed = reason
        worker.state = next_state(worker.state, Event.KILL_SENT)
        self._signal(worker, signal.SIGKILL)

    def _on_control(self, worker: Worker) -> None:
        messages, eof = control.receive(worker.sock)
        for message in messages:
            self._on_message(worker, message)
        if eof:
            # The process is gone or going; the reaper finishes the job.
            try:
                self.selector.unregister(worker.sock)
            except (KeyError, ValueError):
                pass

    def _on_message(self, worker: Worker, message: dict[str, Any]) -> None:
        try:
            self._apply_message(worker, message)
        except TransitionError as exc:
            # A worker bug must not take the master down: log, ignore.
            logger.error("control protocol error pid=%d: %s", worker.pid, exc)

    def _apply_message(self, worker: Worker, message: dict[str, Any]) -> None:
        event = message.get("ev")
        if event == "ready":
            before = worker.state
            worker.state = next_state(before, Event.READY_RECEIVED)
            if before is State.BOOTING:
                worker.ready_at = time.monotonic()
                worker.pool.failures = 0
                worker.pool.next_spawn = 0.0
                worker.pool.ever_ready = True
                logger.info("worker ready pid=%d pool=%s generation=%d "
                            "boot_ms=%d", worker.pid, worker.pool.name,
                            worker.generation.number,
                            (worker.ready_at - worker.started) * 1000)
                self._announce_ready()
        elif event == "stats":
            self._on_stats(worker, message)
        elif event == "recycle":
            if worker.recycle_asked is None:
                worker.recycle_asked = time.monotonic()
                worker.recycle_reason = str(message.get("reason", "recycle"))
        elif event == "exiting":
            reason = str(message.get("reason", "unknown"))
            worker.exit_reason = reason
            logger.info("worker exiting pid=%d reason=%s", worker.pid, reason)
            if worker.state is not State.DRAINING:
                # Not counted any more: its successor is forked right away.
                worker.drain_reason = reason
            worker.state = next_state(worker.state, Event.EXITING_RECEIVED)

    def _on_stats(self, worker: Worker, message: dict[str, Any]) -> None:
        for name in ("requests", "errors5xx", "rss"):
            value = message.get(name)
            if isinstance(value, int):
                setattr(worker, name, value)
        busy = message.get("busy_since")
        worker.busy_since = busy if isinstance(busy, (int, float)) else None
        for name, value in message.items():
            if name not in ("ev", "requests", "errors5xx", "rss",
                            "busy_since", "durations", "status"):
                worker.counters[name] = value
        if worker.pool.kind == "web":
            self.metrics.observe_stats(worker.pid, message)

    def _announce_ready(self) -> None:
        web = [p for p in self.pools if p.kind == "web"]
        if self.announced_ready or self.workers_alive() < sum(
                p.count for p in web):
            return
        self.announced_ready = True
        sdnotify.notify("READY=1",
                        f"STATUS={self.workers_alive()} workers ready")
        logger.info("all workers ready count=%d", self.workers_alive())

    # ---------------------------------------------------------- housekeeping

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._on_exit(worker, status)

    def _on_exit(self, worker: Worker, status: int) -> None:
        # Read what it said last (its "exiting" reason) before closing.
        self._on_control(worker)
        try:
            self.selector.unregister(worker.sock)
        except (KeyError, ValueError):
            pass
        worker.sock.close()
        worker.reaped = True
        self.metrics.forget(worker.pid)

        code, signame = describe_exit(status)
        booted = worker.ready_at is not None
        reason = self._exit_reason(worker, code, signame, booted)
        self._log_exit(worker, code, signame, reason)
        if not self.stopping:
            self.metrics.restart(reason)

        in_reload = self.reload is not None and self.reload.fresh is worker
        if booted or self.stopping or in_reload or worker.drain_reason:
            return

        pool = worker.pool
        if code in HALT_CODES and not pool.ever_ready:
            logger.critical("worker cannot start pool=%s code=%d: halting",
                            pool.name, code)
            self.halt(code)
            return
        pool.failures += 1
        delay = min(self.settings.backoff_base * 2 ** (pool.failures - 1),
                    self.settings.backoff_max)
        pool.next_spawn = time.monotonic() + delay
        logger.error("worker died during boot pool=%s failures=%d "
                     "retry_in=%.1fs", pool.name, pool.failures, delay)

    def _exit_reason(self, worker: Worker, code: int | None,
                     signame: str | None, booted: bool) -> str:
        if worker.killed:
            return worker.killed
        if worker.drain_reason:
            return worker.drain_reason
        if worker.exit_reason:
            return worker.exit_reason
        if not booted:
            return "boot_failure"
        if signame == "SIGKILL":
            return "killed"
        if signame:
            return "signal"
        return "crash" if code else "exit"

    def _log_exit(self, worker: Worker, code: int | None, signame: str | None,
                  reason: str) -> None:
        args = (worker.pid, worker.pool.name, reason)
        if signame == "SIGKILL" and worker.killed:
            logger.warning("worker exited pid=%d pool=%s reason=%s "
                           "signal=SIGKILL", *args)
        elif signame == "SIGKILL":
            logger.error("worker exited pid=%d pool=%s reason=%s "
                         "signal=SIGKILL (out of memory?)", *args)
        elif signame == "SIGTERM":
            logger.info("worker exited pid=%d pool=%s reason=%s "
                        "signal=SIGTERM", *args)
        elif signame:
            logger.warning("worker exited pid=%d pool=%s reason=%s signal=%s",
                           *args, signame)
        elif code:
            logger.error("worker exited pid=%d pool=%s reason=%s code=%d",
                         *args, code)
        else:
            logger.info("worker exited pid=%d pool=%s reason=%s code=0", *args)

    def _kill_overdue(self, now: float) -> None:
        wall = time.time()
        limit = self.settings.request_timeout + self.settings.timeout_grace
        for worker in list(self.workers.values()):
            if worker.killed:
                continue
            if worker.state is State.BOOTING:
                if now - worker.started > self.settings.boot_timeout:
                    logger.critical("boot timeout: worker %d not ready "
                                    "after %ds", worker.pid,
                                    now - worker.started)
                    self._kill(worker, "boot_timeout")
                continue
            busy = worker.busy_since
            if self.settings.request_timeout > 0 and busy is not None \
                    and wall - busy > limit:
                logger.critical("request timeout: worker %d busy %ds",
                                worker.pid, wall - busy)
                self._kill(worker, "timeout")
                continue
            if worker.term_at is not None and not self.stopping and \
                    now - worker.term_at > self.settings.stop_timeout:
                logger.critical("drain timeout: worker %d still running "
                                "%ds after SIGTERM", worker.pid,
                                now - worker.term_at)
                self._kill(worker, "drain_timeout")

    def _replace_bloated(self) -> None:
        limit = self.settings.max_worker_memory
        if limit <= 0 or self.stopping:
            return
        for worker in list(self.workers.values()):
            if worker.state is not State.READY or worker.replaced_by:
                continue
            if worker.rss > limit:
                logger.warning("worker over memory limit pid=%d rss=%d "
                               "limit=%d: replacing", worker.pid, worker.rss,
                               limit)
                self._replace(worker, "memory")

    def _replace(self, worker: Worker, reason: str) -> Worker | None:
        """Fresh first: spawn the successor now, drain ``worker`` once it is
        ready (_drain_replaced).  A pool without overlap drains at once."""
        if not worker.pool.overlap:
            self._drain(worker, reason)
            return None
        fresh = self.spawn(worker.pool, worker.index, self.committed)
        if fresh is not None:
            worker.replaced_by = fresh
            worker.drain_reason = reason
        return fresh

    def _recycle_one(self) -> None:
        """Workers that reached max_requests keep serving until the master
        replaces them: per pool one at a time, successor first, so a pool
        never has two workers recycling at once, whatever their quotas."""
        if self.stopping or self.reload is not None:
            return  # a reload replaces every worker anyway
        now = time.monotonic()
        for pool in self.pools:
            if now < pool.next_spawn:
                continue  # successors fail to boot: back-off applies
            mine = [w for w in self.workers.values() if w.pool is pool]
            if any(w.replaced_by is not None or w.state is State.BOOTING
                   or (w.state is State.DRAINING and w.recycle_asked)
                   for w in mine):
                continue
            asking = [w for w in mine if w.recycle_asked is not None
                      and w.state is State.READY]
            if not asking:
                continue
            worker = min(asking, key=lambda w: w.recycle_asked)
            fresh = self._replace(worker, worker.recycle_reason)
            if fresh is not None:
                logger.info("worker recycling pid=%d reason=%s successor=%d",
                            worker.pid, worker.recycle_reason, fresh.pid)

    def _drain_replaced(self) -> None:
        """Fresh-first replacement: drain a worker once its successor is up."""
        for worker in list(self.workers.values()):
            fresh = worker.replaced_by
            if fresh is None:
                continue
            if fresh.reaped or fresh.state is State.DRAINING:
                # The successor failed: this one keeps serving for now.
                worker.replaced_by = None
                if worker.state is not State.DRAINING:
                    worker.drain_reason = None
            elif fresh.state is State.READY:
                worker.replaced_by = None
                self._drain(worker, worker.drain_reason or "replaced")

    def _maintain(self, now: float) -> None:
        """Bring every pool back to its count, honouring boot back-off."""
        if self.stopping:
            return
        for pool in self.pools:
            # A no-overlap pool counts its draining processes as present.
            active = [w for w in self.workers.values() if w.pool is pool
                      and (w.state is not State.DRAINING or not pool.overlap)]
            missing = pool.count - len(active)
            if missing <= 0 or now < pool.next_spawn:
                continue
            if pool.failures:
                # Probe with one worker at a time while boots keep failing.
                if any(w.state is State.BOOTING for w in active):
                    continue
                missing = 1
            used = {w.index for w in active}
            free = [i for i in range(pool.count) if i not in used]
            for index in free[:missing]:
                self.spawn(pool, index, self.committed)

    # ---------------------------------------------------------------- reload

    def request_reload(self, canary: bool | None) -> dict[str, Any]:
        """SIGHUP and POST /api/reload; a reload during a reload is queued."""
        if self.stopping:
            return {"accepted": False, "error": "shutting down"}
        if canary is None:
            canary = self.settings.canary
        if self.reload is not None:
            self.pending_reload = canary
            logger.info("reload queued behind generation=%d canary=%s",
                        self.reload.generation.number, canary)
            return {"accepted": True, "queued": True, "canary": canary}
        self._start_reload(canary)
        assert self.reload is not None
        return {"accepted": True, "queued": False, "canary": canary,
                "generation": self.reload.generation.number}

    def _start_reload(self, canary: bool) -> None:
        self.last_generation += 1
        generation = Generation(self.last_generation, self.resolve_code())
        self.reload = Reload(generation, canary, time.monotonic())
        # Type=notify-reload units want the reload's start time with it.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        sdnotify.notify("RELOADING=1", f"MONOTONIC_USEC={usec}",
                        f"STATUS=reloading generation {generation.number}")
        logger.info("reload started generation=%d code=%s canary=%s",
                    generation.number, generation.code, canary)

    def _advance_reload(self, now: float) -> None:
        reload = self.reload
        if reload is None:
            if self.pending_reload is not None and not self.stopping:
                canary, self.pending_reload = self.pending_reload, None
                self._start_reload(canary)
            return

        if reload.phase == "watching":
            self._watch_canary(reload, now)
            return

        fresh = reload.fresh
        if fresh is not None:
            # Once ready counts even if it left since (a tiny max_requests).
            if fresh.ready_at is not None:
                reload.fresh = None
                if reload.canary and reload.canary_worker is fresh:
                    reload.phase = "watching"
                    reload.watch_until = now + self.settings.canary_seconds
                    logger.info("canary ready pid=%d: watching for %gs",
                                fresh.pid, self.settings.canary_seconds)
                elif not reload.committed:
                    self._commit(reload)
            elif fresh.reaped or fresh.killed:
                self._reload_failed(
                    reload, f"worker pid={fresh.pid} died during boot")
            elif reload.canary and reload.canary_worker is fresh and \
                    now - fresh.started > self.settings.canary_seconds:
                self._reload_failed(
                    reload,
                    f"not ready within {self.settings.canary_seconds:g}s")
            return

        vacating = reload.vacating
        if vacating is not None:
            if vacating.reaped:
                fresh = self.spawn(vacating.pool, vacating.index,
                                   reload.generation)
                if fresh is not None:
                    reload.vacating = None
                    reload.fresh = fresh
            return

        old = self._next_to_roll(reload.generation.number)
        if old is None:
            self._finish_reload(reload)
            return
        if now < old.pool.next_spawn:
            return      # the pool is backing off (boot or fork failures)
        if not old.pool.overlap:
            self._drain(old, "reload")
            reload.vacating = old
            return
        fresh = self.spawn(old.pool, old.index, reload.generation)
        if fresh is None:
            return      # fork failed; tried again on a later pass
        old.replaced_by = fresh
        old.drain_reason = "reload"
        reload.fresh = fresh
        if reload.canary and reload.canary_worker is None:
            reload.canary_worker = fresh
            logger.info("canary started pid=%d generation=%d", fresh.pid,
                        reload.generation.number)

    def _next_to_roll(self, number: int) -> Worker | None:
        # Web workers first: the canary must be a worker that serves HTTP.
        order = sorted(self.workers.values(),
                       key=lambda w: (w.pool.kind != "web", w.pid))
        for worker in order:
            if worker.generation.number < number and \
                    worker.state is not State.DRAINING and \
                    worker.replaced_by is None:
                return worker
        return None

    def _watch_canary(self, reload: Reload, now: float) -> None:
        canary = reload.canary_worker
        assert canary is not None
        if canary.reaped or canary.killed or canary.exit_reason:
            self._reload_failed(reload, f"canary pid={canary.pid} exited")
            return
        rate = canary.errors5xx / canary.requests if canary.requests else 0.0
        if now < reload.watch_until:
            return
        if rate > self.settings.error_rate:
            self._reload_failed(
                reload, f"5xx rate {rate:.2f} over {self.settings.error_rate:.2f}"
                f" ({canary.errors5xx} of {canary.requests})")
            return
        logger.info("canary healthy — rolling the rest requests=%d "
                    "errors5xx=%d", canary.requests, canary.errors5xx)
        reload.phase = "rolling"
        self._commit(reload)

    def _commit(self, reload: Reload) -> None:
        """From now on, respawns use the new generation."""
        reload.committed = True
        self.committed = reload.generation

    def _reload_failed(self, reload: Reload, why: str) -> None:
        if reload.canary and not reload.committed:
            logger.error("canary UNHEALTHY — aborting reload; remaining "
                         "workers keep old code generation=%d reason=%s",
                         self.committed.number, why)
            outcome = "aborted"
        else:
            logger.error("reload failed generation=%d reason=%s",
                         reload.generation.number, why)
            outcome = "failed"

        # Undo the half-done step: the predecessor stays, the newcomer goes.
        for worker in list(self.workers.values()):
            if worker.replaced_by is reload.fresh and reload.fresh:
                worker.replaced_by = None
                worker.drain_reason = None
        for worker in (reload.fresh, reload.canary_worker):
            if worker is not None and not worker.reaped and not reload.committed:
                self._drain(worker, "reload_aborted")

        self.metrics.reload(outcome)
        self.reload = None
        sdnotify.notify("READY=1", f"STATUS=reload {outcome}")

    def _finish_reload(self, reload: Reload) -> None:
        self._commit(reload)
        self.metrics.reload("success")
        self.reload = None
        logger.info("reload finished generation=%d seconds=%.1f",
                    reload.generation.number, time.monotonic() - reload.started)
        sdnotify.notify("READY=1",
                        f"STATUS=generation {reload.generation.number}")

    # ------------------------------------------------------------ admin view

    def workers_alive(self) -> int:
        return sum(1 for w in self.workers.values()
                   if w.pool.kind == "web" and w.state is State.READY)

    def healthy(self) -> bool:
        return self.workers_alive() > 0

    def ready(self) -> bool:
        return self.workers_alive() > 0 and not self.stopping

    def metrics_text(self) -> tuple[bytes, str]:
        return self.metrics.render(), self.metrics.content_type

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        wall = time.time()

        def describe(worker: Worker) -> dict[str, Any]:
            info = {
                "pid": worker.pid, "index": worker.index,
                "state": worker.state.value,
                "generation": worker.generation.number,
                "requests": worker.requests, "errors5xx": worker.errors5xx,
                "rss": worker.rss,
                "request_age": (round(wall - worker.busy_since, 3)
                                if worker.busy_since else None),
                "uptime": round(now - worker.started, 3),
                "max_requests": worker.quota,
            }
            if worker.pool.kind != "web":
                info["counters"] = dict(worker.counters)
            elif "io" in worker.counters:
                info["io"] = worker.counters["io"]
            return info

        by_pool = {pool.name: sorted((w for w in self.workers.values()
                                      if w.pool is pool), key=lambda w: w.index)
                   for pool in self.pools}
        reload = None
        if self.reload is not None:
            reload = {"generation": self.reload.generation.number,
                      "canary": self.reload.canary,
                      "phase": self.reload.phase}
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(now - self.started, 3),
            "state": ("stopping" if self.stopping else
                      "reloading" if self.reload else "running"),
            "generation": self.committed.number,
            "code": self.committed.code,
            # What the workers report using (stats "io"), else the setting.
            "io": next((w.counters["io"] for w in self.workers.values()
                        if w.pool.kind == "web" and "io" in w.counters),
                       self.settings.io),
            "io_configured": self.settings.io,
            "listen": [format_address(s) for s in self.listeners],
            "workers_alive": self.workers_alive(),
            "workers": [describe(w) for p in self.pools if p.kind == "web"
                        for w in by_pool[p.name]],
            "services": [
                {"name": p.name, "count": p.count,
                 "processes": [describe(w) for w in by_pool[p.name]]}
                for p in self.pools if p.kind != "web"],
            "reload": reload,
            "reload_queued": self.pending_reload is not None,
        }


class ExecTarget:
    """A target that execs a worker program instead of running Python code.

    The child makes the listeners and its control socket inheritable and
    describes them in ASKR_* variables (``askr.control.spec_to_env``); the
    program rebuilds its spec with ``askr.control.spec_from_env``.
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None
                 ) -> None:
        self.argv = argv
        self.env = env

    def __call__(self, spec: WorkerSpec) -> None:
        for sock in (spec.control, *spec.listeners, *spec.tls_listeners):
            sock.set_inheritable(True)
        env = dict(os.environ if self.env is None else self.env)
        env.update(control.spec_to_env(spec))
        os.execvpe(self.argv[0], self.argv, env)


def settings_from_config(cfg: Any) -> Settings:
    """Map an ``askr.config.Config`` onto the master's settings.

    Knobs the config file does not have (grace, stop and boot timeouts,
    back-off) keep their defaults here.
    """
    admin_listen = cfg.admin.listen
    return Settings(
        listen=[str(a) for a in cfg.server.listen],
        tls_listen=[str(a) for a in cfg.tls.listen],
        request_timeout=float(cfg.server.request_timeout),
        max_worker_memory=int(cfg.server.max_worker_memory),
        canary=bool(cfg.reload.canary),
        canary_seconds=float(cfg.reload.canary_seconds),
        error_rate=float(cfg.reload.error_rate),
        admin_listen=str(admin_listen) if admin_listen else None,
        admin_allow_public=bool(cfg.admin.allow_public),
        root=cfg.server.root,
        io=cfg.server.io,
    )


def import_target(path: str) -> Target:
    """"package.module:function" -> the callable (for launchers)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name or "main")


def main(argv: list[str] | None = None) -> int:
    """Run a master from the command line (tests and manual trials).

    ``python -m askr.supervisor --target pkg.mod:func --workers 2
    --settings '{"listen": ["127.0.0.1:0"]}'``; prints one JSON line with
    the bound addresses on stdout once listening.
    """
    import argparse
    import json
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m askr.supervisor")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", help="module:function run after fork")
    target.add_argument("--exec", help="worker program to exec after fork")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=0)
    parser.add_argument("--max-requests-jitter", type=int, default=None)
    parser.add_argument("--service", action="append", default=[],
                        metavar="NAME=MODULE:FUNC:COUNT[:no-overlap]")
    parser.add_argument("--config", help="askr.toml given to targets as "
                        "spec.config (its [server] etc. seed the settings)")
    parser.add_argument("--settings", default="{}", help="JSON of Settings")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    cfg = None
    overrides = json.loads(args.settings)
    if args.config:
        from askr import config

        cfg = config.load(args.config)
        base = settings_from_config(cfg)
        settings = Settings(**{**base.__dict__, **overrides})
    else:
        settings = Settings(**overrides)
    web_target: Target = (import_target(args.target) if args.target
                          else ExecTarget(shlex.split(args.exec)))
    pools = [Pool("web", web_target, args.workers,
                  max_requests=args.max_requests,
                  max_requests_jitter=args.max_requests_jitter,
                  config=cfg)]
    for text in args.service:
        name, _, rest = text.partition("=")
        overlap = not rest.endswith(":no-overlap")
        rest = rest.removesuffix(":no-overlap")
        target, _, count = rest.rpartition(":")
        pools.append(Pool(name, import_target(target), int(count),
                          kind="service", config=cfg, overlap=overlap))

    def report(addresses: dict[str, Any]) -> None:
        print(json.dumps(addresses), flush=True)

    return Supervisor(settings, pools, on_bound=report).run()


if __name__ == "__main__":
    # Run the importable copy so loggers are named askr.supervisor.
    from askr.supervisor import main as _main

    raise SystemExit(_main())
