"""Start a real ``askr serve`` master for a test, on loopback.

The master binds port 0 (the kernel picks a free port) and logs the
address; the test reads it from the log, so parallel runs never collide.
Stopped with SIGTERM (then SIGKILL) by ``stop()``; the fixture in
conftest.py guarantees it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
ASKR = [sys.executable, "-m", "askr.cli"]
TLS_PORT = re.compile(r"listening address=\S+:(\d+) tls=on")


def tls_section(workdir: Path) -> dict[str, object]:
    """A self-signed pair in workdir/cert and the [tls] section that
    serves it on a free loopback port (``AskrServer.tls_port`` once started)."""
    from askr import certs

    certs.generate(str(workdir / "cert"), ["localhost", "127.0.0.1"])
    return {"listen": ["127.0.0.1:0"],
            "cert": str(workdir / "cert" / "cert.pem"),
            "key": str(workdir / "cert" / "key.pem")}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    text = str(value)
    if "\n" in text:
        return "'''\n" + text + "\n'''"
    return json.dumps(text)


def write_config(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class AskrServer:
    def __init__(self, workdir: Path, sections: dict[str, dict[str, object]],
                 ready_timeout: float = 60.0,
                 extra_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.sections = {"server": {}, "admin": {}, "log": {}}
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        server = self.sections["server"]
        server.setdefault("listen", ["127.0.0.1:0"])
        server.setdefault("workers", 1)
        self.sections["admin"].setdefault("listen", "127.0.0.1:0")
        self.ready_timeout = ready_timeout
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.admin_port = 0
        self.log_path = workdir / "askr.log"

    def start(self) -> AskrServer:
        conf = write_config(self.workdir / "askr.toml", self.sections)
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*ASKR, "serve", "--config", str(conf), *self.extra_args],
            stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=TOP, start_new_session=True)
        self.wait_log(r"all workers ready", self.ready_timeout)
        text = self.log()
        ports = re.findall(r"(?<!admin )listening address=\S+:(\d+)\b", text)
        self.port = int(ports[0])
        admin = re.search(r"admin listening address=\S+:(\d+)", text)
        self.admin_port = int(admin.group(1)) if admin else 0
        tls = TLS_PORT.search(text)
        self.tls_port = int(tls.group(1)) if tls else 0
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30.0,
                 count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if len(re.findall(pattern, text)) >= count:
                return text
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"askr exited ({self.proc.returncode}):\n"
                                   f"{text[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"no {pattern!r} in the log:\n{self.log()[-3000:]}")

    # -- clients ------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port),
                                        timeout=timeout)
        return sock

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = 30.0) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def get(self, path: str, **kw) -> tuple[int, list[tuple[str, str]], bytes]:
        return self.request("GET", path, **kw)

    def admin(self, method: str, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port,
                                          timeout=10)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def status(self) -> dict:
        code, body = self.admin("GET", "/api/status")
        assert code == 200, body
        return json.loads(body)

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.status()["workers"]]

    # -- stopping ------------------------------------------------------------

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Whatever the master left behind (it should be nothing).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log_file.close()
        return self.proc.returncode


def read_response(sock: socket.socket, timeout: float = 10.0,
                  head_only: bool = False) -> tuple[
        int, dict[str, list[str]], bytes, bytes]:
    """Read one HTTP/1.1 response from a raw socket (Content-Length or
    chunked bodies); returns (status, headers, body, leftover)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())

    if head_only:
        return status, headers, b"", rest

    if "content-length" in headers:
        size = int(headers["content-length"][0])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            rest += chunk
        return status, headers, rest[:size], rest[size:]

    if headers.get("transfer-encoding") == ["chunked"]:
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return status, headers, body, rest

    if status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", rest
    while True:  # close-delimited
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, rest, b""
        rest += chunk
