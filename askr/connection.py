"""The glue of a worker: the loop's events in, HTTP and PHP in between.

Theory of operation
-------------------
Facts.  A worker runs one PHP request at a time, synchronously, on the same
thread as its event loop: while PHP runs, no completion is reaped.  The
loop (askr.uring) moves bytes and knows nothing of HTTP; the protocol
objects (askr.http, askr.tls) turn bytes into events and back and know
nothing of sockets; the bridge (askr.php) runs a job and calls
``job.send`` with the response.  This module is the only one that sees all
three.

Strategy.  ``Server.next_job()`` runs the loop until a PHP request is
complete (head and whole body), then returns it as a ``Job``; the caller
(askr.worker) hands it to the bridge, in classic mode with
``run_script(job)``, in worker mode from inside ``askr_handle_request``.
Everything else happens between two PHP requests, inside ``next_job``:
accepting, parsing, buffering bodies, answering static files and errors,
flushing responses, timeouts.

- Accepting is gated: the worker accepts only while it is waiting in the
  loop, never while PHP runs, so that idle workers take new connections
  (``set_accepting``).  With a single worker there is nobody to leave them
  to, and the gate stays open.  A worker with requests queued still opens
  the gate for one non-blocking look every ``POLL_BUSY_EVERY`` between two
  requests, so clients arriving while every worker is busy are accepted
  within one request, not one pass over every kept-alive connection.
- Request bodies are buffered before PHP starts, like nginx does for
  php-fpm: in memory up to ``SPOOL_AT``, then in an unlinked temporary file
  whose descriptor the bridge reads in C.  A slow uploader then costs a
  socket, not a PHP worker, and no body is ever held whole in Python.
- A response PHP produces in one piece (the usual case) is framed once and
  queued with one ``send``; the loop writes it after PHP returns.  A
  response PHP streams (``flush()``, large output, ``fastcgi_finish_
  request()``) is written with ``send_sync`` while PHP waits, which keeps
  memory bounded for a slow reader, as a blocking FastCGI write would.
- Requests on one connection are answered in order; the HTTP/1.1 object
  releases the next pipelined request only after the current response is
  out (``EV_SENT``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import deque
from typing import Any

from askr.http import docroot, h1, negotiate, static
from askr.php import environ
from askr.uring import EV_ACCEPT, EV_DATA, EV_EOF, EV_ERROR, EV_SENT

# job.send(last=...) from the bridge: 1 = complete as PHP returns, 2 =
# complete while PHP runs on (fastcgi_finish_request), see docs/DESIGN.md.
FINISHED_EARLY = 2

log = logging.getLogger("askr.worker")
access_log = logging.getLogger("askr.access")

# Bodies up to this size stay in memory; larger ones go to a temp file.
# nginx's client_body_buffer_size is 8-16k; PHP copies the body once more
# anyway, so a little more memory saves a file for typical forms and JSON.
SPOOL_AT = 256 * 1024

# Connections are swept for timeouts this often; a timeout fires at most
# this late.  A heap would be exact, but per-request timer updates cost
# more than one pass a second over a few hundred connections.
SWEEP_EVERY = 0.5
# A worker with PHP requests queued still looks at its sockets this often
# (between two requests, never during one): new connections waiting in the
# listen backlog and new requests then queue behind the current ones
# instead of behind a whole pass over every kept-alive connection.
POLL_BUSY_EVERY = 0.01

SERVER_SOFTWARE = "Askr"

# While draining, an idle keep-alive connection is kept this long for a
# request already on its way; then it is closed.
DRAIN_GRACE = 1.0

# Static files over TLS go out in pieces of this size (no sendfile there).
FILE_CHUNK = 256 * 1024

# Descriptors of static files kept open between requests (OpenFiles): at
# most this many, each closed after this many seconds unused.
OPEN_FILES_MAX = 64
OPEN_FILES_IDLE = 10.0


class OpenFiles:
    """Descriptors of the static files served lately, reused while the
    file is unchanged: one open(2) and close(2) fewer per request.

    Every request still stats its path (docroot resolves each request), and
    a kept descriptor is used only when that fresh stat shows the inode the
    descriptor had when it was opened, with the same size, mtime and ctime.
    ctime moves on every write, truncate, chmod, chown and rename of the
    inode, so a file rewritten, replaced (a deploy's rename), or made
    unreadable is opened afresh, never served stale.  A deleted file is not
    served (its stat fails); its kept descriptor, and the disk space it
    pins, go after OPEN_FILES_IDLE seconds (``sweep``) or when
    OPEN_FILES_MAX newer files push it out.  nginx's open_file_cache makes
    the same trade.  Descriptors are close-on-exec; the loop only borrows
    them (its backends duplicate one only for a transfer left to finish).
    """

    __slots__ = ("fds",)

    def __init__(self) -> None:
        # path -> [fd, (ino, dev, size, mtime_ns, ctime_ns), last used]
        self.fds: dict[str, list] = {}

    def get(self, path: str, st: os.stat_result, now: float) -> int:
        """A descriptor of ``path`` whose stat is ``st``; it stays ours (the
        caller must not close it).  OSError if the file cannot be opened."""
        entry = self.fds.get(path)
        if entry is not None:
            key = entry[1]
            if (key[0] == st.st_ino and key[2] == st.st_size
                    and key[3] == st.st_mtime_ns and key[4] == st.st_ctime_ns
                    and key[1] == st.st_dev):
                entry[2] = now
                return entry[0]
            del self.fds[path]
            os.close(entry[0])
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # What this descriptor really is (the path may have been
            # replaced since the stat): that is what later stats must match.
            fst = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if len(self.fds) >= OPEN_FILES_MAX:
            oldest = min(self.fds, key=lambda p: self.fds[p][2])
            os.close(self.fds.pop(oldest)[0])
        self.fds[path] = [fd, (fst.st_ino, fst.st_dev, fst.st_size,
                               fst.st_mtime_ns, fst.st_ctime_ns), now]
        return fd

    def sweep(self, now: float) -> None:
        """Close the descriptors unused for OPEN_FILES_IDLE seconds."""
        for path in [p for p, e in self.fds.items()
                     if now - e[2] >= OPEN_FILES_IDLE]:
            os.close(self.fds.pop(path)[0])

    def close(self) -> None:
        for entry in self.fds.values():
            os.close(entry[0])
        self.fds.clear()


class Limits:
    """The per-connection limits and timeouts, from the config."""

    def __init__(self, cfg: Any = None) -> None:
        server = getattr(cfg, "server", None)
        self.max_body_size = _get(server, "max_body_size", h1.MAX_BODY_SIZE)
        self.header_timeout = float(_get(server, "header_timeout", 10.0))
        self.keepalive_timeout = float(_get(server, "keepalive_timeout", 75.0))
        self.body_timeout = float(_get(server, "body_timeout", 60.0))
        self.send_timeout = float(_get(server, "send_timeout", 60.0))
        self.https = bool(_get(server, "https", False))


def _get(section: Any, name: str, default: Any) -> Any:
    value = getattr(section, name, None) if section is not None else None
    return default if value is None else value


class Listener:
    """A listening socket this worker inherited, and what it serves."""

    def __init__(self, sock: Any, tls_context: Any = None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.tls_context = tls_context
        self.port = sock.getsockname()[1]


class Request:
    """One request in progress: its head, route and buffered body.

    Shared by HTTP/1.1 and HTTP/2; ``job()`` turns a complete PHP request
    into the bridge's Job.  Bodies of anything but PHP are discarded.
    """

    __slots__ = ("body", "body_size", "head", "route", "spool")

    def __init__(self, head: Any, root: str) -> None:
        self.head = head
        self.route = docroot.resolve(root, head.target)
        self.body: list[bytes] = []
        self.body_size = 0
        self.spool: Any = None

    @property
    def is_php(self) -> bool:
        return self.route.kind == "php"

    def add_body(self, data: bytes, spool_dir: str) -> None:
        if self.route.kind != "php":
            return
        self.body_size += len(data)
        if self.spool is not None:
            self.spool.write(data)
            return
        self.body.append(data)
        if self.body_size > SPOOL_AT:
            self.spool = tempfile.TemporaryFile(  # noqa: SIM115 (Job closes it)
                prefix="askr-body-", dir=spool_dir)
            self.spool.write(b"".join(self.body))
            self.body = []

    def job(self, out: Any, server: Server, peer: tuple[str, int],
            local: tuple[str, int], https: bool) -> Job:
        head, route = self.head, self.route
        env = environ.build(
            method=head.method, target=head.target,
            protocol="HTTP/" + head.version, headers=head.headers,
            client=peer, server=local, server_name=server.server_name,
            https=https, document_root=server.root,
            script_name=route.script_name,
            script_filename=route.script_filename,
            path_info=route.path_info, request_time=time.time(),
            software=SERVER_SOFTWARE)
        spool, self.spool = self.spool, None
        if spool is not None:
            spool.seek(0)
        body, self.body = b"".join(self.body), []
        return Job(out, server, env, body, spool, head.method, head.target,
                   peer[0])

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class Job:
    """One PHP request, as the bridge sees it (docs/DESIGN.md).

    ``out`` is where the response goes: an HTTP/1.1 connection or one
    HTTP/2 stream, each with ``respond`` (whole response, queued),
    ``stream`` (a piece, written now), ``done`` and ``gone``.
    """

    __slots__ = ("body", "body_fd", "bytes_out", "client", "done", "env",
                 "head_sent", "method", "out", "server", "spool", "started",
                 "status", "target")

    def __init__(self, out: Any, server: Server, env: list, body: bytes,
                 spool: Any, method: str, target: bytes, client: str) -> None:
        self.out = out
        self.server = server
        self.env = env
        self.body = body
        self.spool = spool
        self.body_fd = spool.fileno() if spool is not None else -1
        self.method = method
        self.target = target
        self.client = client
        self.started = time.monotonic()
        self.head_sent = False
        self.status = 0
        self.bytes_out = 0
        self.done = False

    def send(self, status: int, headers: list[bytes] | None, data: bytes,
             last: bool) -> bool:
        """Called by the bridge; see docs/DESIGN.md.  Never raises: an
        exception here would unwind into C."""
        try:
            return self._send(status, headers, data, last)
        except Exception:
            log.exception("response of %s %r failed", self.method, self.target)
            self.out.abort()
            if last:
                self._finish(status or 500)
            return False

    def _send(self, status: int, headers: list[bytes] | None, data: bytes,
              last: bool) -> bool:
        if self.done:
            return False
        out = self.out
        if out.gone():
            if last:
                self._finish(status)
            return False

        self.bytes_out += len(data)
        if last and not self.head_sent:
            self.status = status
            self.head_sent = True
            if last == FINISHED_EARLY:
                # fastcgi_finish_request(): PHP runs on, so the client
                # gets its response now, not when the script ends.
                ok = out.respond_now(status, headers or [], data)
            else:
                # The usual case: the whole response in one piece, queued
                # now and written by the loop once PHP has returned.
                out.respond(status, headers or [], data)
                ok = True
            self._finish(status)
            return ok

        first = not self.head_sent
        if first:
            self.head_sent = True
            self.status = status
        ok = out.stream(status, headers or [] if first else None, data, last)
        if last:
            self._finish(self.status)
        return ok and not out.gone()

    def next_job(self) -> Job | None:
        """Worker mode: the bridge asks the finished request for the next
        one (docs/DESIGN.md).  Never raises into C."""
        try:
            return self.server.next_job()
        except Exception:
            log.exception("worker loop failed; stopping this worker")
            return None

    def discard(self) -> None:
        """Dropped before PHP ran: the client went away meanwhile."""
        self.done = True
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        self.out.done()

    def _finish(self, status: int) -> None:
        self.done = True
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        self.server.job_finished(self, status)
        self.out.done()


class Conn:
    """What HTTP/1.1 and HTTP/2 connections share: the socket side."""

    def __init__(self, server: Server, fd: int, peer: tuple[str, int],
                 local: tuple[str, int], tls: Any) -> None:
        self.server = server
        self.fd = fd
        self.peer = peer
        self.local = local
        self.tls = tls
        self.closed = False
        self.close_when_sent = False
        self.awaiting_sent = False
        self.deadline = 0.0

    @property
    def https(self) -> bool:
        return self.tls is not None or self.server.limits.https

    def _tls_in(self, data: bytes) -> bytes:
        """Decrypt; send what TLS wants sent; b"" when nothing to parse."""
        from askr.tls.pipe import TLSError, TLSState

        try:
            plain, out = self.tls.feed(data)
        except TLSError as exc:
            log.info("tls: %s:%d: %s", self.peer[0], self.peer[1], exc)
            if exc.to_send:
                self.server.backend.send(self.fd, exc.to_send)
                self.close_when_sent = True
                self.awaiting_sent = True
            else:
                self.close()
            return b""
        if out:
            self.awaiting_sent = True
            self.server.backend.send(self.fd, out)
        if self.tls.state is TLSState.CLOSED:
            self.close_when_sent = True
            if not self.awaiting_sent:
                self.close()
        return plain

    def write(self, data: bytes) -> None:
        """Queue bytes; the loop writes them when it next runs."""
        if self.closed or not data:
            return
        if self.tls is not None:
            data = self.tls.wrap(data)
        self.awaiting_sent = True
        self.server.backend.send(self.fd, data)

    def write_now(self, data: bytes) -> bool:
        """Write while PHP runs (streamed output); False if the client is
        gone or too slow for the send timeout."""
        if self.closed:
            return False
        if not data:
            return True
        if self.tls is not None:
            data = self.tls.wrap(data)
        ok = self.server.backend.send_sync(self.fd, data,
                                           self.server.limits.send_timeout)
        if not ok:
            self.abort()
        return ok

    def abort(self) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.release()
        self.server.forget(self)

    def release(self) -> None:
        """Free what the connection holds (files, parsers)."""


class HttpConn(Conn):
    """One client connection speaking HTTP/1.1 (possibly over TLS).

    A cleartext connection that opens with the HTTP/2 preface, or a TLS
    one whose ALPN chose h2, becomes an H2Conn before any request."""

    def __init__(self, server: Server, fd: int, peer: tuple[str, int],
                 local: tuple[str, int], tls: Any = None) -> None:
        super().__init__(server, fd, peer, local, tls)
        self.proto = h1.H1Connection(
            max_body_size=server.limits.max_body_size)
        self.sniffing = True
        self.sniffed = b""
        self.paused = False
        self.timer_kind: str | None = None
        self.req: Request | None = None
        # A static file sent through TLS (read and encrypted here, piece by
        # piece) outlives its request's bookkeeping: its descriptor.
        self.static_file: int | None = None
        self.file_left: tuple[int, int] | None = None
        self._arm_timer(time.monotonic())

    # -- bytes in ------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self.tls is not None:
            data = self._tls_in(data)
            if not data or self.closed:
                self._opening_timer()
                return
        if self.sniffing and self._sniff(data):
            self._opening_timer()
            return
        self.handle(self.proto.receive_data(data))

    def _opening_timer(self) -> None:
        """A TLS handshake or an HTTP/2 preface has begun but is not
        complete: the client has started talking, so the short header
        timeout applies, not the keep-alive one (a stalled handshake held
        the connection for keepalive_timeout)."""
        if self.closed or self.server.conns.get(self.fd) is not self:
            return  # closed, or handed over to HTTP/2
        kind = self.proto.timer_kind
        starting = bool(self.sniffed) or (
            self.tls is not None and self.tls.state.value == "handshake")
        if kind == "idle" and starting:
            if self.timer_kind != "head":
                self.timer_kind = "head"
                self.deadline = (time.monotonic()
                                 + self.server.limits.header_timeout)
        elif kind != self.timer_kind:
            self._arm_timer(time.monotonic())

    def _sniff(self, data: bytes) -> bool:
        """Pick the protocol on the first bytes; True when they were
        consumed here (held back, or handed to HTTP/2)."""
        if self.tls is not None:
            self.sniffing = False
            if negotiate.from_alpn(self.tls.alpn) is negotiate.Protocol.HTTP2:
                self.server.upgrade_h2(self, data)
                return True
            return False

        seen = self.sniffed + data
        kind = negotiate.sniff_preface(seen)
        if kind is None:
            self.sniffed = seen  # a prefix of the preface: wait for more
            return True
        self.sniffing = False
        self.sniffed = b""
        if kind is negotiate.Protocol.HTTP2:
            self.server.upgrade_h2(self, seen)
            return True
        if len(seen) != len(data):
            self.handle(self.proto.receive_data(seen))
            return True
        return False

    def on_eof(self) -> None:
        if self.tls is not None:
            self._tls_in(b"")
        if self.closed:
            return
        if self.sniffed:
            self.handle(self.proto.receive_data(self.sniffed))
        self.handle(self.proto.receive_eof())
        if not self.closed and self.req is None and not self.awaiting_sent:
            self.close()

    def handle(self, events: list) -> None:
        for ev in events:
            if self.closed:
                return
            kind = type(ev)
            if kind is h1.BodyReceived:
                self.req.add_body(ev.data, self.server.spool_dir)
            elif kind is h1.RequestReceived:
                self._head(ev)
            elif kind is h1.RequestEnded:
                self._ended()
            elif kind is h1.ProtocolFailed:
                log.info("http: %s:%d: %d %s", self.peer[0], self.peer[1],
                         ev.status, ev.reason)
                self.server.count_error(ev.status)
                self.write(ev.response)
                self.close_when_sent = True
                if not self.awaiting_sent:
                    self.close()
            else:  # ConnectionClosed
                self.close()
        self._flow()

    def _flow(self) -> None:
        if self.closed:
            return
        want_pause = self.proto.pause_reading
        if want_pause != self.paused:
            self.paused = want_pause
            if want_pause:
                self.server.backend.pause(self.fd)
            else:
                self.server.backend.resume(self.fd)
        if self.proto.timer_kind != self.timer_kind:
            self._arm_timer(time.monotonic())

    def _head(self, ev: h1.RequestReceived) -> None:
        self.req = req = Request(ev, self.server.root)
        if req.is_php and ev.expects_continue:
            self.write(self.proto.continue_bytes())

    def _ended(self) -> None:
        req = self.req
        route = req.route
        if route.kind == "php":
            self.server.ready.append(
                req.job(self, self.server, self.peer, self.local, self.https))
        elif route.kind == "static":
            self._static(req)
        elif route.kind == "redirect":
            self._answer(301, b"301 Moved Permanently\n",
                         [b"Location: " + route.location])
        else:
            self._answer(route.status, b"%d %s\n" % (
                route.status, h1.status_line(route.status)[13:]))

    # -- answers that need no PHP ---------------------------------------

    def _answer(self, status: int, body: bytes,
                headers: list[bytes] | None = None) -> None:
        self.server.count_error(status)
        lines = [b"Content-Type: text/plain; charset=utf-8", *(headers or [])]
        self.write(self.proto.simple_response(status, lines, body))
        self.server.access(self.peer[0], self.req.head, status, len(body), 0.0)
        self.done()

    def _static(self, req: Request) -> None:
        head, route = req.head, req.route
        plan = static.plan(route.stat, route.path, head.headers, head.method)
        response_head = self.proto.start_response(plan.status, plan.headers)
        count = self.proto.file_body(plan.count)
        if not count:
            self.write(response_head)
        elif self.tls is None:
            try:
                file_fd = self.server.files.get(route.path, route.stat,
                                                time.monotonic())
            except OSError as exc:
                self._file_gone(route.path, exc)
                return
            # Head and range in one call (one segment to start with); the
            # backend only borrows file_fd.
            self.awaiting_sent = True
            self.server.backend.sendfile(self.fd, file_fd, plan.offset, count,
                                         response_head)
        else:
            try:
                file_fd = os.open(route.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                self._file_gone(route.path, exc)
                return
            self.write(response_head)
            self.static_file = file_fd
            # No sendfile through TLS: read, encrypt and send a chunk each
            # time the previous one is out, so memory stays flat.
            self.file_left = (plan.offset, count)
            self._pump_file()
        self.write(self.proto.end_response())
        self.server.access(self.peer[0], head, plan.status, count, 0.0)
        self.done()

    def _file_gone(self, path: str, exc: OSError) -> None:
        # Gone or unreadable between stat and open: the response is framed
        # with the stat's length, so the only honest answer left is to cut
        # the connection.
        log.warning("static %s: %s", path, exc)
        self.close()

    def _pump_file(self) -> None:
        offset, left = self.file_left
        chunk = os.pread(self.static_file, min(left, FILE_CHUNK), offset)
        if not chunk:
            self.close()  # the file shrank under us
            return
        self.write(chunk)
        left -= len(chunk)
        self.file_left = (offset + len(chunk), left) if left else None

    # -- the Job's side (docs/DESIGN.md, job.send) -------------------------

    def gone(self) -> bool:
        return self.closed

    def respond(self, status: int, headers: list[bytes], data: bytes) -> None:
        self.write(self.proto.simple_response(status, headers, data))

    def respond_now(self, status: int, headers: list[bytes],
                    data: bytes) -> bool:
        return self.write_now(self.proto.simple_response(status, headers,
                                                         data))

    def stream(self, status: int, headers: list[bytes] | None, data: bytes,
               last: bool) -> bool:
        proto = self.proto
        parts = []
        if headers is not None:
            parts.append(proto.start_response(status, headers))
        if last:
            parts.append(proto.end_response(data))
        elif data:
            parts.append(proto.send_body(data))
        return self.write_now(b"".join(parts))

    def done(self) -> None:
        """The current response is framed and handed to the loop."""
        if self.closed:
            return
        if self.proto.closing:
            self.close_when_sent = True
        if self.req is not None:
            self.req.discard()
            self.req = None
        if not self.awaiting_sent:
            self.on_sent()

    # -- bytes out -------------------------------------------------------

    def on_sent(self) -> None:
        """Everything queued so far is written."""
        self.awaiting_sent = False
        if self.file_left is not None and not self.closed:
            self._pump_file()
            return
        if self.static_file is not None:
            os.close(self.static_file)
            self.static_file = None
        if self.closed:
            return
        if self.close_when_sent:
            self.close()
            return
        if self.req is None and not self.server.ready_has(self):
            # Between requests: the next pipelined one, if any, comes now.
            self.handle(self.proto.next_events())

    # -- timers and closing ------------------------------------------------

    def _arm_timer(self, now: float) -> None:
        kind = self.proto.timer_kind
        self.timer_kind = kind
        limits = self.server.limits
        if kind == "idle":
            self.deadline = now + limits.keepalive_timeout
        elif kind == "head":
            self.deadline = now + limits.header_timeout
        elif kind == "body":
            self.deadline = now + limits.body_timeout
        else:
            self.deadline = 0.0

    def check_timer(self, now: float) -> None:
        if self.deadline and now >= self.deadline and not self.closed:
            out = self.proto.timeout_fired()
            log.info("http: %s:%d: %s timeout", self.peer[0], self.peer[1],
                     self.timer_kind)
            if out:
                self.write(out)
                self.close_when_sent = True
                self.deadline = 0.0
            else:
                self.close()

    def is_idle(self) -> bool:
        return (self.req is None and not self.awaiting_sent
                and not self.server.ready_has(self))

    def drain(self) -> None:
        # An idle keep-alive connection is not closed at once: a client may
        # be sending its next request right now, and closing would fail it.
        # It gets DRAIN_GRACE to do so (answered with Connection: close).
        self.proto.disable_keep_alive()
        if self.is_idle():
            self.deadline = min(self.deadline or 1e18,
                                time.monotonic() + DRAIN_GRACE)

    def release(self) -> None:
        if self.req is not None:
            self.req.discard()
            self.req = None
        if self.static_file is not None:
            os.close(self.static_file)
            self.static_file = None
        self.proto.close()


class H2Stream:
    """One HTTP/2 stream, as a Job's ``out``."""

    __slots__ = ("conn", "sid")

    def __init__(self, conn: H2Conn, sid: int) -> None:
        self.conn = conn
        self.sid = sid

    def gone(self) -> bool:
        return self.conn.closed or self.sid in self.conn.reset_streams

    def respond(self, status: int, headers: list[bytes], data: bytes) -> None:
        conn = self.conn
        conn.h2.send(self.sid, status, headers, data, True)
        conn.write(conn.h2.data_to_send())

    def respond_now(self, status: int, headers: list[bytes],
                    data: bytes) -> bool:
        return self.stream(status, headers, data, True)

    def stream(self, status: int, headers: list[bytes] | None, data: bytes,
               last: bool) -> bool:
        conn = self.conn
        ok = conn.h2.send(self.sid, status, headers, data, last)
        return conn.write_now(conn.h2.data_to_send()) and ok

    def done(self) -> None:
        self.conn.stream_done(self.sid)

    def abort(self) -> None:
        self.conn.h2.reset(self.sid)


class H2Conn(Conn):
    """One client connection speaking HTTP/2 (h2 over TLS, or h2c).

    Streams are multiplexed by the h2 object; PHP requests of concurrent
    streams queue in the worker like any other (one PHP request at a
    time); static files of other streams are answered meanwhile.
    """

    def __init__(self, server: Server, fd: int, peer: tuple[str, int],
                 local: tuple[str, int], tls: Any) -> None:
        from askr.http import h2

        super().__init__(server, fd, peer, local, tls)
        self.h2mod = h2
        self.h2 = h2.H2Server(max_body_size=server.limits.max_body_size)
        self.requests: dict[int, Request] = {}
        self.reset_streams: set[int] = set()
        # Streams whose request body is still coming: when it last moved
        # (body_timeout applies per stream, as between two reads in h1).
        self.body_wait: dict[int, float] = {}
        self.open_jobs = 0
        self.write(self.h2.data_to_send())
        self.deadline = time.monotonic() + server.limits.keepalive_timeout

    def on_data(self, data: bytes) -> None:
        if self.tls is not None:
            data = self._tls_in(data)
            if not data or self.closed:
                return
        self.feed(data)

    def feed(self, data: bytes) -> None:
        h2 = self.h2mod
        now = time.monotonic()
        self.deadline = now + self.server.limits.keepalive_timeout
        for ev in self.h2.feed(data, now):
            kind = type(ev)
            if kind is h2.BodyReceived:
                req = self.requests.get(ev.stream_id)
                if req is not None:
                    req.add_body(ev.data, self.server.spool_dir)
                    self.body_wait[ev.stream_id] = now
            elif kind is h2.RequestReceived:
                req = Request(ev, self.server.root)
                self.requests[ev.stream_id] = req
                self.body_wait[ev.stream_id] = now
                if req.is_php and ev.expects_continue:
                    self.h2.send_continue(ev.stream_id)
            elif kind is h2.RequestEnded:
                self.body_wait.pop(ev.stream_id, None)
                self._ended(ev.stream_id)
            elif kind is h2.StreamReset:
                if ev.reason:
                    log.info("h2: %s:%d: stream %d: %s", self.peer[0],
                             self.peer[1], ev.stream_id, ev.reason)
                self.body_wait.pop(ev.stream_id, None)
                self.reset_streams.add(ev.stream_id)
                req = self.requests.pop(ev.stream_id, None)
                if req is not None:
                    req.discard()
            else:  # ConnectionClosed
                if ev.error_code or ev.reason != "peer sent goaway":
                    # A protocol error or a flood: one line, as for h1.
                    log.info("h2: %s:%d: %s (error %d)", self.peer[0],
                             self.peer[1], ev.reason, ev.error_code)
                self.write(self.h2.data_to_send())
                self.close_when_sent = True
                if not self.awaiting_sent:
                    self.close()
                return
        self.write(self.h2.data_to_send())

    def _ended(self, sid: int) -> None:
        req = self.requests.get(sid)
        if req is None:
            return
        route = req.route
        if route.kind == "php":
            self.open_jobs += 1
            self.server.ready.append(req.job(
                H2Stream(self, sid), self.server, self.peer, self.local,
                self.https))
            return

        self.requests.pop(sid, None)
        if route.kind == "static":
            status, headers, body = self._static_body(req)
        elif route.kind == "redirect":
            status, headers, body = 301, [b"Location: " + route.location], b""
        else:
            status, headers, body = route.status, [
                b"Content-Type: text/plain; charset=utf-8"], b"%d\n" % (
                    route.status)
        self.server.count_error(status)
        self.h2.send(sid, status, headers, body, True)
        self.server.access(self.peer[0], req.head, status, len(body), 0.0)

    def _static_body(self, req: Request) -> tuple[int, list[bytes], bytes]:
        # HTTP/2 framing and flow control happen in Python anyway, so the
        # file is read; fine for assets, not for gigabyte downloads, which
        # belong on HTTP/1.1 sendfile (nginx makes the same trade-off).
        head, route = req.head, req.route
        plan = static.plan(route.stat, route.path, head.headers, head.method)
        body = b""
        if plan.count and head.method != "HEAD":
            with open(route.path, "rb") as f:
                body = os.pread(f.fileno(), plan.count, plan.offset)
        return plan.status, plan.headers, body

    def stream_done(self, sid: int) -> None:
        self.open_jobs -= 1
        req = self.requests.pop(sid, None)
        if req is not None:
            req.discard()
        if self.server.draining and not self.open_jobs:
            self.drain()

    def on_eof(self) -> None:
        self.close()

    def on_sent(self) -> None:
        self.awaiting_sent = False
        if self.close_when_sent or (self.h2.finished and not self.open_jobs):
            self.close()

    def check_timer(self, now: float) -> None:
        if self.body_wait:
            self._body_timeouts(now)
        if (self.deadline and now >= self.deadline and not self.open_jobs
                and not self.requests):
            self.write(self.h2.close())
            self.close_when_sent = True
            self.deadline = 0.0

    def _body_timeouts(self, now: float) -> None:
        """Refuse (408) the streams whose body stopped coming: without
        this a HEADERS frame without END_STREAM held the connection (and
        the request's memory or spool file) for ever."""
        limit = self.server.limits.body_timeout
        late = [sid for sid, t in self.body_wait.items() if now - t >= limit]
        for sid in late:
            del self.body_wait[sid]
            log.info("h2: %s:%d: stream %d: body timeout", self.peer[0],
                     self.peer[1], sid)
            self.reset_streams.add(sid)
            req = self.requests.pop(sid, None)
            if req is not None:
                req.discard()
            self.h2.refuse(sid, 408, "request body timeout")
        if late:
            self.deadline = now + self.server.limits.keepalive_timeout
            self.write(self.h2.data_to_send())

    def is_idle(self) -> bool:
        return not self.open_jobs and not self.requests

    def drain(self) -> None:
        self.h2.drain()
        self.write(self.h2.data_to_send())
        if self.is_idle():
            self.close_when_sent = True
            if not self.awaiting_sent:
                self.close()

    def release(self) -> None:
        for req in self.requests.values():
            req.discard()
        self.requests.clear()


class Server:
    """The per-worker connection table, job queue and loop driver."""

    def __init__(self, backend: Any, listeners: list[Listener], *,
                 root: str, limits: Limits, gate_accept: bool,
                 server_name: str = "localhost", spool_dir: str | None = None,
                 on_finished: Any = None, access_log_on: bool = True,
                 worker_id: int = 0) -> None:
        self.backend = backend
        self.listeners = {lst.port: lst for lst in listeners}
        self.root = root
        self.limits = limits
        self.gate_accept = gate_accept
        self.server_name = server_name
        self.spool_dir = spool_dir or tempfile.gettempdir()
        self.on_finished = on_finished
        self.access_log_on = access_log_on
        self.worker_id = worker_id
        self.conns: dict[int, HttpConn] = {}
        self.ready: deque[Job] = deque()
        self.draining = False
        self.accepting = False
        self.requests = 0
        self.errors5xx = 0
        self.next_sweep = 0.0
        self.last_poll = 0.0
        self.files = OpenFiles()
        for lst in listeners:
            backend.add_listener(lst.fd)

    # -- the loop --------------------------------------------------------

    def next_job(self) -> Job | None:
        """Run the loop until a PHP request is ready; None when drained."""
        backend = self.backend
        while True:
            if self.ready and not self.draining and \
                    time.monotonic() - self.last_poll >= POLL_BUSY_EVERY:
                self._poll_while_busy()
            while self.ready:
                job = self.ready.popleft()
                if job.out.gone():
                    job.discard()
                    continue
                if self.gate_accept and self.accepting:
                    backend.set_accepting(False)
                    self.accepting = False
                return job

            if self.draining and not self.conns:
                if self._last_accepts():
                    continue
                return None

            want = not self.draining
            if want != self.accepting:
                backend.set_accepting(want)
                self.accepting = want

            now = time.monotonic()
            events = backend.wait(max(0.0, min(SWEEP_EVERY,
                                               self.next_sweep - now)))
            self.last_poll = time.monotonic()
            if events:
                self.dispatch(events)
            now = time.monotonic()
            if now >= self.next_sweep:
                self.next_sweep = now + SWEEP_EVERY
                self.sweep(now)
            self.idle_hook()

    def idle_hook(self) -> None:
        """Called once per loop pass; the worker overrides it (signals,
        stats to the master)."""

    def dispatch(self, events: list) -> None:
        conns = self.conns
        for kind, fd, value in events:
            if kind == EV_DATA:
                conn = conns.get(fd)
                if conn is not None:
                    conn.on_data(value)
            elif kind == EV_SENT:
                conn = conns.get(fd)
                if conn is not None:
                    conn.on_sent()
            elif kind == EV_ACCEPT:
                self._accepted(fd, value)
            elif kind == EV_EOF:
                conn = conns.get(fd)
                if conn is not None:
                    conn.on_eof()
            elif kind == EV_ERROR:
                conn = conns.get(fd)
                if conn is not None:
                    log.debug("connection %s:%d: errno %s", conn.peer[0],
                              conn.peer[1], value)
                    conn.close()

    def _accepted(self, fd: int, addrs: tuple) -> None:
        peer_host, peer_port, local_host, local_port = addrs
        listener = self.listeners.get(local_port)
        tls = None
        if listener is not None and listener.tls_context is not None:
            from askr.tls.pipe import TLSPipe

            tls = TLSPipe(listener.tls_context)
        conn = HttpConn(self, fd, (peer_host, peer_port),
                        (local_host, local_port), tls)
        self.conns[fd] = conn
        self.backend.watch(fd)
        if self.draining:
            # Accepted just before accepting stopped: its client may have
            # sent a request already.  Answer it (then close), as closing
            # now would reset the connection under that request.
            conn.drain()

    def sweep(self, now: float) -> None:
        for conn in list(self.conns.values()):
            conn.check_timer(now)
        if self.files.fds:
            self.files.sweep(now)

    # -- bookkeeping ---------------------------------------------------

    def upgrade_h2(self, conn: HttpConn, data: bytes) -> None:
        """Hand a fresh connection over to HTTP/2 (ALPN h2 or the h2c
        preface) and feed it the bytes read so far."""
        h2conn = H2Conn(self, conn.fd, conn.peer, conn.local, conn.tls)
        h2conn.awaiting_sent = conn.awaiting_sent
        conn.proto.close()
        self.conns[conn.fd] = h2conn
        if self.draining:
            h2conn.drain()
        h2conn.feed(data)

    def _last_accepts(self) -> bool:
        """Before a drained worker exits: reap what the cancelled accepts
        left.  An accept the kernel completed just as accepting stopped
        holds a client's connection; unreaped, it hung that client until
        its own timeout.  True when such a connection came in (it is
        served, then the worker drains again)."""
        if self.accepting:
            self.backend.set_accepting(False)
            self.accepting = False
        for timeout in (0.0, 0.02):
            events = self.backend.wait(timeout)
            if events:
                self.dispatch(events)
            if self.conns:
                return True
        return False

    def _poll_while_busy(self) -> None:
        """One non-blocking look at the sockets while requests are queued.
        Without it a busy worker accepted one connection per pass over its
        queue: 64 new keep-alive clients on 2 workers waited up to 3 s for
        their first answer (measured with classic Laravel at ~6 ms each)."""
        backend = self.backend
        if not self.accepting:
            backend.set_accepting(True)
            self.accepting = True
        events = backend.wait(0)
        self.last_poll = time.monotonic()
        if events:
            self.dispatch(events)
        # The worker's checks (a pending SIGTERM, stats to the master) run
        # here too: a worker that never empties its queue never idles, and
        # an old-code worker kept serving after a reload until load ended.
        self.idle_hook()

    def ready_has(self, out: Any) -> bool:
        return any(job.out is out for job in self.ready)

    def forget(self, conn: Conn) -> None:
        if self.conns.get(conn.fd) is conn:
            del self.conns[conn.fd]
            self.backend.close(conn.fd)

    def job_finished(self, job: Job, status: int) -> None:
        self.requests += 1
        if status >= 500:
            self.errors5xx += 1
        elapsed = time.monotonic() - job.started
        if self.access_log_on:
            access_log.info("%s %s %s %d %d %.1fms w%d", job.client,
                            job.method, job.target.decode("latin-1"), status,
                            job.bytes_out, elapsed * 1000, self.worker_id)
        if self.on_finished is not None:
            self.on_finished(job, status, elapsed)

    def count_error(self, status: int) -> None:
        if status >= 500:
            self.errors5xx += 1

    def access(self, client: str, head: Any, status: int, size: int,
               elapsed: float) -> None:
        if not self.access_log_on:
            return
        method, target = (head.method, head.target) if head else ("-", b"-")
        access_log.info("%s %s %s %d %d %.1fms w%d", client, method,
                        target.decode("latin-1"), status, size,
                        elapsed * 1000, self.worker_id)

    def drain(self) -> None:
        """Stop accepting; finish what is in flight; close idle
        keep-alive connections.  next_job() returns None when done."""
        if self.draining:
            return
        self.draining = True
        for conn in list(self.conns.values()):
            conn.drain()

    def shutdown(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()
        self.backend.shutdown()
        self.files.close()
