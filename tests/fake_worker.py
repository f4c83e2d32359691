"""A stand-in worker for testing the master without PHP.

Pure Python, blocking, one connection at a time: it selects on the
inherited listen sockets, serves one connection (keep-alive honoured) and
speaks the control channel with ``askr.control``.  Its behaviour is driven
by files in the release directory it was given (``spec.code``), so a test
can "deploy" broken code the way an operator would:

    VERSION      text returned as gen=... (else the generation number)
    BOOT_FAIL    exit before reporting ready, with the code written in
                 it (empty: WORKER_BOOT_FAILED)
    FAIL_ALL     answer every request with 500
    BOOT_DELAY   seconds to sleep before ready (float)
    DOUBLE_READY send "ready" twice (a worker breaking the protocol)

Routes: GET / -> "gen=<..> pid=<pid>"; GET /slow?s=2 sleeps (sending
stats meanwhile); GET /sleep?ms=10 sleeps and answers like /; GET /fail ->
500; POST /upload reads the body slowly and echoes its length;
GET /grow?mb=N keeps N MiB allocated (for the memory limit).

SIGTERM: finish the request in flight, close, exit 0.  A service process
(``spec.pool != "web"``) counts fake jobs instead of serving HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Self
from urllib.parse import parse_qs, urlsplit

import psutil

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
        self.dirty = True       # the first stats go out right after ready
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
            durations=self.durations, io="blocking")
        if sent:
            self.durations = []
            self.dirty = False
            self.last_stats = now

    def on_term(self, signum: int, frame: object) -> None:
        self.stopping = True

    # ----------------------------------------------------------------- main

    def run(self) -> int:
        # SIGTERM keeps its default (die) while booting: nothing to finish.
        delay = self.marker("BOOT_DELAY")
        if delay:
            time.sleep(float(delay))
        failure = self.marker("BOOT_FAIL")
        if failure is not None:
            print("fake worker: BOOT_FAIL marker, exiting", file=sys.stderr)
            return int(failure or errors.WORKER_BOOT_FAILED)
        signal.signal(signal.SIGTERM, self.on_term)

        if self.spec.pool != "web":
            return self.run_service()

        control.ready(self.spec.control)
        if self.marker("DOUBLE_READY") is not None:
            control.ready(self.spec.control)    # a protocol bug on purpose
        quota = self.spec.max_requests
        asked = False
        while not self.stopping:
            self.flush_stats()
            if quota and self.requests >= quota and not asked:
                # As askr.worker: ask, keep serving until drained.
                control.recycle(self.spec.control, "max_requests")
                asked = True
            if self.quota_reached():
                control.exiting(self.spec.control, "max_requests")
                break
            try:
                readable, _, _ = select.select(self.spec.listeners, [], [], 0.1)
            except InterruptedError:
                continue
            for listener in readable:
                if self.stopping:
                    break
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
        first = True
        try:
            while True:
                head, buffer = self.read_head(conn, buffer, first)
                first = False
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
        """Past twice the quota without being drained: leave anyway."""
        quota = self.spec.max_requests
        return bool(quota) and self.requests >= 2 * quota

    def read_head(self, conn: socket.socket, buffer: bytes,
                  first: bool) -> tuple[bytes | None, bytes]:
        waited = 0
        while b"\r\n\r\n" not in buffer:
            # Idle keep-alive: give up when draining and nothing arrived.
            # A connection just accepted is owed its first request: the
            # client sent it to a listening socket and expects an answer.
            if self.stopping and not buffer and not first:
                return None, b""
            waited += 1
            if waited > 100:    # 10 s of silence
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
            self.flush_stats()
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
        return bool(quota) and self.requests + 1 >= 2 * quota

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
        if path == "/sleep" and method == "GET":
            time.sleep(int(query.get("ms", ["10"])[0]) / 1000)
            return 200, f"gen={self.version()} pid={os.getpid()}\n"
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


# ---------------------------------------------------------------------------
# Test harness: a deployment of the fake app, a master subprocess, a load
# generator.  The scenario tests take the worker target and the deployment
# as fixtures, so the same scenarios can run against the real PHP worker by
# providing another target string and another Deployment.

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeDeployment:
    """releases/<name>/ directories and a ``current`` symlink, like a
    Capistrano/Deployer layout; markers in a release break it on purpose."""

    target = "tests.fake_worker:main"

    def __init__(self, base: str) -> None:
        self.base = base
        self.root = os.path.join(base, "current")
        os.makedirs(os.path.join(base, "releases"), exist_ok=True)

    # Extra MasterProcess options (a PHP deployment would pass config_file).
    master_options: dict[str, object] = {}  # noqa: RUF012

    def release(self, name: str, *, boot_fail: bool | int = False,
                fail_all: bool = False, boot_delay: float = 0.0) -> str:
        path = os.path.join(self.base, "releases", name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "VERSION"), "w") as f:
            f.write(name)
        for marker, wanted in (("BOOT_FAIL", boot_fail),
                               ("FAIL_ALL", fail_all)):
            if wanted is not False:
                with open(os.path.join(path, marker), "w") as f:
                    if wanted is not True:
                        f.write(str(wanted))
        if boot_delay:
            with open(os.path.join(path, "BOOT_DELAY"), "w") as f:
                f.write(str(boot_delay))
        return path

    def activate(self, name: str) -> None:
        """Point ``current`` at a release atomically (rename over it)."""
        tmp = self.root + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.join("releases", name), tmp)
        os.replace(tmp, self.root)

    def deploy(self, name: str, **markers: object) -> None:
        self.release(name, **markers)  # type: ignore[arg-type]
        self.activate(name)


class MasterProcess:
    """``python -m askr.supervisor`` in a subprocess, driven over HTTP."""

    def __init__(self, target: str, root: str, log_path: str, *,
                 workers: int = 3, max_requests: int = 0,
                 max_requests_jitter: int | None = None,
                 services: tuple[str, ...] = (), exec_: bool = False,
                 config_file: str | None = None,
                 **settings: object) -> None:
        config = {"listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
                  "root": root, "canary_seconds": 1.0, "stop_timeout": 10.0,
                  "backoff_base": 0.05, "backoff_max": 1.0}
        config.update(settings)
        if exec_:
            how = ["--exec", f"{sys.executable} {os.path.abspath(__file__)}"]
        else:
            how = ["--target", target]
        argv = [sys.executable, "-m", "askr.supervisor", *how,
                "--workers", str(workers), "--max-requests", str(max_requests),
                "--settings", json.dumps(config)]
        if max_requests_jitter is not None:
            argv += ["--max-requests-jitter", str(max_requests_jitter)]
        for service in services:
            argv += ["--service", service]
        if config_file:
            argv += ["--config", config_file]

        env = dict(os.environ, PYTHONPATH=REPO)
        self.log_path = log_path
        self.log_file = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env,
                                     stdout=subprocess.PIPE,
                                     stderr=self.log_file)
        self.workers = workers
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("master did not start:\n" + self.log())
        info = json.loads(line)
        self.pid: int = info["pid"]
        self.listen: str = info["listen"][0] if info["listen"] else ""
        self.admin_address: str = info["admin"]

    # --------------------------------------------------------------- HTTP

    @staticmethod
    def _request(address: str, method: str, path: str, body: bytes | None,
                 timeout: float) -> tuple[int, dict[str, str], bytes]:
        host, _, port = address.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return (response.status, dict(response.getheaders()),
                    response.read())
        finally:
            conn.close()

    def get(self, path: str = "/", timeout: float = 10) -> tuple[int, str]:
        status, _, body = self._request(self.listen, "GET", path, None,
                                        timeout)
        return status, body.decode()

    def admin(self, method: str, path: str,
              timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
        return self._request(self.admin_address, method, path,
                             b"" if method == "POST" else None, timeout)

    def status(self) -> dict:
        code, _, body = self.admin("GET", "/api/status")
        assert code == 200, body
        return json.loads(body)

    # ------------------------------------------------------------ waiting

    def wait_for(self, predicate, timeout: float = 15.0,
                 what: str = "condition"):
        """Poll ``predicate(status)`` until truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status()
            value = predicate(last)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last status: "
                             f"{last!r}\n{self.log()[-3000:]}")

    def wait_alive(self, count: int | None = None, timeout: float = 15.0):
        count = self.workers if count is None else count
        return self.wait_for(lambda s: s["workers_alive"] == count and s,
                             timeout, f"{count} workers alive")

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n{self.log()[-3000:]}")

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    # ----------------------------------------------------------- stopping

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Stop the master and, whatever happens, every process it forked."""
        children = _children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdout.close()
        self.log_file.close()


def _children(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


class Load:
    """Client threads sending requests until stopped, recording outcomes.

    ``keepalive`` clients reuse one connection.  When a reused connection
    turns out closed by the server before any response byte (the usual
    keep-alive race with a draining worker), the request is retried once on
    a new connection, as HTTP clients do for idempotent requests; any other
    failure is recorded.
    """

    def __init__(self, address: str, *, new_conns: int = 1,
                 keepalive: int = 1, path: str = "/") -> None:
        self.address = address
        self.path = path
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[float, int, str]] = []
        # Seconds from sending a request to its full response (retries of
        # stale keep-alive connections included).
        self.latencies: list[float] = []
        self.failures: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._run, args=(False,))
                        for _ in range(new_conns)]
        self.threads += [threading.Thread(target=self._run, args=(True,))
                         for _ in range(keepalive)]

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, keepalive: bool) -> None:
        host, _, port = self.address.rpartition(":")
        conn = None
        sent = None
        while not self.stopping.is_set():
            fresh = conn is None
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                if sent is None:    # kept across a stale-connection retry
                    sent = time.monotonic()
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read().decode()
                self._record(response.status, body, time.monotonic() - sent)
                sent = None
                if not keepalive or response.will_close:
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                conn.close()
                conn = None
                if fresh:
                    self._fail(repr(exc))
                    sent = None
                # else: stale keep-alive connection; retried on a new one
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                self._fail(repr(exc))
                sent = None
        if conn is not None:
            conn.close()

    def _record(self, status: int, body: str, latency: float) -> None:
        with self.lock:
            self.results.append((time.monotonic(), status, body))
            self.latencies.append(latency)

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append((time.monotonic(), what))

    def count(self) -> int:
        with self.lock:
            return len(self.results)

    def wait_count(self, extra: int, timeout: float = 15.0) -> None:
        """Wait until ``extra`` more responses have arrived."""
        goal = self.count() + extra
        deadline = time.monotonic() + timeout
        while self.count() < goal and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.count() >= goal, (self.count(), goal, self.failures)
