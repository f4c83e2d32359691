"""The control channel between the master and each worker process.

Facts: the master forks every worker and hands it one end of a
``socketpair(AF_UNIX, SOCK_SEQPACKET)``.  A SEQPACKET socket keeps message
boundaries, so one ``send`` is one JSON object and one ``recv`` returns it
whole; a peer that dies shows up as a zero-length read (EOF).

Strategy: the worker only ever writes (ready / stats / exiting) and the
master only ever reads; the master talks back with signals (SIGTERM =
drain, SIGKILL = last resort, SIGUSR1 = reopen logs).  Worker sends never
block: a stats packet that does not fit is dropped, because the next one
supersedes it anyway.

This module also defines ``WorkerSpec``, what a worker target receives
after the fork, and its environment form for targets that exec a program.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

# One packet per message; stats are a few hundred bytes, durations batches
# a few KiB.  The master reads with this buffer; larger packets are cut.
MAX_PACKET = 64 * 1024

ENV_CONTROL_FD = "ASKR_CONTROL_FD"
ENV_LISTEN_FDS = "ASKR_LISTEN_FDS"
ENV_TLS_LISTEN_FDS = "ASKR_TLS_LISTEN_FDS"
ENV_GENERATION = "ASKR_GENERATION"
ENV_CODE = "ASKR_CODE"
ENV_POOL = "ASKR_POOL"
ENV_INDEX = "ASKR_WORKER_INDEX"
ENV_MAX_REQUESTS = "ASKR_MAX_REQUESTS"
ENV_REQUEST_TIMEOUT = "ASKR_REQUEST_TIMEOUT"


@dataclass
class WorkerSpec:
    """Everything a worker process needs from the master, built per fork.

    ``code`` is the application root resolved (realpath) when the worker's
    generation was created, so a worker of an old generation keeps running
    the old release even after the ``current`` symlink moved.
    """

    pool: str
    index: int
    generation: int
    control: socket.socket
    listeners: list[socket.socket] = field(default_factory=list)
    tls_listeners: list[socket.socket] = field(default_factory=list)
    code: str | None = None
    max_requests: int = 0
    request_timeout: float = 0.0
    config: Any = None


def channel() -> tuple[socket.socket, socket.socket]:
    """Return (master end, worker end) of a new control channel."""
    master, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    master.setblocking(False)
    return master, worker


def send(sock: socket.socket, message: dict[str, Any]) -> bool:
    """Send one message without blocking; False if it was dropped.

    Dropping is safe for stats (the next packet carries the same
    cumulative counters).  A vanished master is not the worker's problem
    here either: it will get SIGTERM or be orphaned and notice on its own.
    """
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            return False
        raise
    return True


def ready(sock: socket.socket) -> bool:
    """Tell the master this worker has booted and accepts requests."""
    return send(sock, {"ev": "ready", "pid": os.getpid()})


def exiting(sock: socket.socket, reason: str) -> bool:
    """Tell the master why this worker is about to exit."""
    return send(sock, {"ev": "exiting", "reason": reason})


def recycle(sock: socket.socket, reason: str) -> bool:
    """Worker: "replace me when it suits you" (max_requests reached).  The
    worker keeps serving; the master starts its successor and drains it
    once that one is ready, one worker of a pool at a time."""
    return send(sock, {"ev": "recycle", "reason": reason})


def stats(sock: socket.socket, *, requests: int, errors5xx: int, rss: int,
          busy_since: float | None, **extra: Any) -> bool:
    """Send cumulative counters; ``extra`` carries optional fields.

    Optional fields the master understands: ``status`` (cumulative counts
    by class, {"2xx": n, ...}), ``durations`` (seconds of the requests
    finished since the previous stats packet), ``io`` (the event loop
    backend in use, shown in /api/status), and for services any counters
    to show in /api/status (``jobs``, ``last_run``, ...).
    """
    message = {"ev": "stats", "requests": requests, "errors5xx": errors5xx,
               "rss": rss, "busy_since": busy_since}
    message.update(extra)
    return send(sock, message)


def receive(sock: socket.socket) -> tuple[list[dict[str, Any]], bool]:
    """Read every pending message; returns (messages, eof).

    Malformed packets are skipped: a worker must not be able to crash the
    master with bad JSON.
    """
    messages: list[dict[str, Any]] = []
    while True:
        try:
            data = sock.recv(MAX_PACKET)
        except BlockingIOError:
            return messages, False
        except OSError:
            return messages, True
        if not data:
            return messages, True
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (0 if unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident * os.sysconf("SC_PAGE_SIZE")


def spec_to_env(spec: WorkerSpec) -> dict[str, str]:
    """Environment for a worker program started with exec after the fork.

    The caller must make the listed descriptors inheritable first.
    """
    return {
        ENV_CONTROL_FD: str(spec.control.fileno()),
        ENV_LISTEN_FDS: ",".join(str(s.fileno()) for s in spec.listeners),
        ENV_TLS_LISTEN_FDS: ",".join(
            str(s.fileno()) for s in spec.tls_listeners),
        ENV_GENERATION: str(spec.generation),
        ENV_CODE: spec.code or "",
        ENV_POOL: spec.pool,
        ENV_INDEX: str(spec.index),
        ENV_MAX_REQUESTS: str(spec.max_requests),
        ENV_REQUEST_TIMEOUT: str(spec.request_timeout),
    }


def spec_from_env(environ: dict[str, str] | None = None) -> WorkerSpec:
    """Rebuild a ``WorkerSpec`` inside an exec'd worker program."""
    env = os.environ if environ is None else environ
    control = socket.socket(fileno=int(env[ENV_CONTROL_FD]))

    def sockets(name: str) -> list[socket.socket]:
        return [socket.socket(fileno=int(fd))
                for fd in env.get(name, "").split(",") if fd]

    return WorkerSpec(
        pool=env.get(ENV_POOL, "web"),
        index=int(env.get(ENV_INDEX, "0")),
        generation=int(env.get(ENV_GENERATION, "1")),
        control=control,
        listeners=sockets(ENV_LISTEN_FDS),
        tls_listeners=sockets(ENV_TLS_LISTEN_FDS),
        code=env.get(ENV_CODE) or None,
        max_requests=int(env.get(ENV_MAX_REQUESTS, "0")),
        request_timeout=float(env.get(ENV_REQUEST_TIMEOUT, "0")),
    )
