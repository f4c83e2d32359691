"""A stand-in worker for testing the master without PHP.

Pure Python, blocking, one connection at a time: it selects on the
inherited listen sockets, serves one connection (keep-alive honoured) and
speaks the control channel with ``askr.control``.  Its behaviour is driven
by files in the release directory it was given (``spec.code``), so a test
can "deploy" broken code the way an operator would:

    VERSION      text returned as gen=... (else the generation number)
    BOOT_FAIL    exit with WORKER_BOOT_FAILED before reporting ready
    FAIL_ALL     answer every request with 500
    BOOT_DELAY   seconds to sleep before ready (float)

Routes: GET / -> "gen=<..> pid=<pid>"; GET /slow?s=2 sleeps; GET /fail ->
500; POST /upload reads the body slowly and echoes its length;
GET /grow?mb=N keeps N MiB allocated (for the memory limit).

SIGTERM: finish the request in flight, close, exit 0.  A service process
(``spec.pool != "web"``) counts fake jobs instead of serving HTTP.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

from askr import control, errors
from askr.control import WorkerSpec

STATS_INTERVAL = 0.25


class FakeWorker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.stopping = False
        self.requests = 0
        self.errors5xx = 0
        self.status: dict[str, int] = {}
        self.durations: list[float] = []
        self.busy_since: float | None = None
        self.last_stats = 0.0
        self.dirty = False
        self.hoard: list[bytes] = []

    # -------------------------------------------------------------- helpers

    def marker(self, name: str) -> str | None:
        if not self.spec.code:
            return None
        try:
            with open(os.path.join(self.spec.code, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def version(self) -> str:
        return self.marker("VERSION") or os.environ.get(
            control.ENV_GENERATION, str(self.spec.generation))

    def flush_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not (self.dirty or force) or now - self.last_stats < STATS_INTERVAL:
            return
        sent = control.stats(
            self.spec.control, requests=self.requests,
            errors5xx=self.errors5xx, rss=control.rss_bytes(),
            busy_since=self.busy_since, status=dict(self.status),
            durations=self.durations)
        if sent:
            self.durations = []
            self.dirty = False
            self.last_stats = now

    def on_term(self, signum: int, frame: object) -> None:
        self.stopping = True

    # ----------------------------------------------------------------- main

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        delay = self.marker("BOOT_DELAY")
        if delay:
            time.sleep(float(delay))
        if self.marker("BOOT_FAIL") is not None:
            print("fake worker: BOOT_FAIL marker, exiting", file=sys.stderr)
            return errors.WORKER_BOOT_FAILED

        if self.spec.pool != "web":
            return self.run_service()

        control.ready(self.spec.control)
        quota = self.spec.max_requests
        while not self.stopping:
            self.flush_stats()
            if quota and self.requests >= quota:
                control.exiting(self.spec.control, "max_requests")
                break
            try:
                readable, _, _ = select.select(self.spec.listeners, [], [], 0.1)
            except InterruptedError:
                continue
            for listener in readable:
                try:
                    conn, _addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                self.serve(conn)
                break

        if self.stopping:
            control.exiting(self.spec.control, "drain")
        self.flush_stats(force=True)
        return errors.OK

    def run_service(self) -> int:
        control.ready(self.spec.control)
        jobs = 0
        while not self.stopping:
            time.sleep(0.05)
            jobs += 1
            if time.monotonic() - self.last_stats >= STATS_INTERVAL:
                control.stats(self.spec.control, requests=0, errors5xx=0,
                              rss=control.rss_bytes(), busy_since=None,
                              jobs=jobs, last_run=time.time())
                self.last_stats = time.monotonic()
        control.exiting(self.spec.control, "drain")
        return errors.OK

    # ----------------------------------------------------------------- HTTP

    def serve(self, conn: socket.socket) -> None:
        """Serve one connection until it closes or we must stop."""
        conn.setblocking(True)
        conn.settimeout(0.1)
        buffer = b""
        try:
            while True:
                head, buffer = self.read_head(conn, buffer)
                if head is None:
                    return
                keep = self.handle(conn, head, buffer)
                buffer = keep if keep is not None else b""
                if keep is None or self.stopping or self.quota_reached():
                    return
        except OSError:
            return
        finally:
            conn.close()

    def quota_reached(self) -> bool:
        quota = self.spec.max_requests
        return bool(quota) and self.requests >= quota

    def read_head(self, conn: socket.socket,
                  buffer: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            # Idle keep-alive: give up when draining and nothing arrived.
            if self.stopping and not buffer:
                return None, b""
            self.flush_stats()
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return None, b""
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        return head, rest

    def handle(self, conn: socket.socket, head: bytes,
               rest: bytes) -> bytes | None:
        """Answer one request; returns the leftover bytes or None to close."""
        started = time.monotonic()
        self.busy_since = time.time()
        self.dirty = True
        self.flush_stats()

        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = parse_qs(url.query)
        length = int(headers.get("content-length", "0") or 0)

        body, rest = rest[:length], rest[length:]
        slow_body = url.path == "/upload"
        while len(body) < length:
            if slow_body:
                time.sleep(0.01)
            try:
                data = conn.recv(min(4096, length - len(body)))
            except TimeoutError:
                continue
            if not data:
                return None
            body += data

        status, text = self.route(method, url.path, query, body)
        close = (headers.get("connection", "").lower() == "close"
                 or self.stopping or self.quota_next())
        payload = text.encode()
        response = (
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
            f"Content-Type: text/plain\r\nX-Worker-Pid: {os.getpid()}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        ).encode() + payload
        conn.sendall(response)

        self.requests += 1
        klass = f"{status // 100}xx"
        self.status[klass] = self.status.get(klass, 0) + 1
        if status >= 500:
            self.errors5xx += 1
        self.durations.append(time.monotonic() - started)
        self.busy_since = None
        self.dirty = True
        self.flush_stats()
        return None if close else rest

    def quota_next(self) -> bool:
        quota = self.spec.max_requests
        return bool(quota) and self.requests + 1 >= quota

    def route(self, method: str, path: str, query: dict[str, list[str]],
              body: bytes) -> tuple[int, str]:
        if self.marker("FAIL_ALL") is not None:
            return 500, "broken deploy\n"
        if path == "/" and method == "GET":
            return 200, f"gen={self.version()} pid={os.getpid()}\n"
        if path == "/slow" and method == "GET":
            deadline = time.monotonic() + float(query.get("s", ["2"])[0])
            while time.monotonic() < deadline:
                # Keep stats flowing so the master sees busy_since.
                self.flush_stats(force=True)
                time.sleep(0.02)
            return 200, f"slow done gen={self.version()} pid={os.getpid()}\n"
        if path == "/fail":
            return 500, "failing on purpose\n"
        if path == "/upload" and method == "POST":
            return 200, f"received={len(body)} pid={os.getpid()}\n"
        if path == "/grow":
            megabytes = int(query.get("mb", ["100"])[0])
            # Written, not just reserved, so the pages count in the RSS.
            self.hoard.append(b"\x01" * (megabytes << 20))
            self.dirty = True
            return 200, f"grew={megabytes} pid={os.getpid()}\n"
        return 404, "not found\n"


def main(spec: WorkerSpec) -> int:
    """Worker target: the master's forked child calls this."""
    return FakeWorker(spec).run()


if __name__ == "__main__":
    # Exec form: the master's command-line target sets ASKR_* variables.
    raise SystemExit(main(control.spec_from_env()))
