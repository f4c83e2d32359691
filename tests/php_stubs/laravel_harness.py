"""Helpers for the tests of the demo Laravel app, run WITHOUT Askr.

Three ways to drive the app, all against a throwaway copy made by
``make_app_copy`` (the repository copy is never written to):

* ``CliServer``: ``php -S`` on 127.0.0.1 port 0, classic one-boot-per-request
  mode, through ``public/index.php``;
* ``StubWorker``: ``examples/laravel-worker.php`` under php-cli with
  ``askr_stub.php`` standing in for Askr's ``askr_handle_request()``; one
  JSON line per request on stdin, one per response on stdout;
* ``run_php_script``: the queue and scheduler scripts under php-cli.

``Client`` keeps one browser's cookies over either transport.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP_SRC = REPO / "examples" / "laravel-app"
STUB = Path(__file__).resolve().parent / "askr_stub.php"
STOP_STUB = Path(__file__).resolve().parent / "askr_should_stop_stub.php"
SETUP = REPO / "scripts" / "setup-laravel-app.sh"
PHP = os.environ.get("PHP", "php")

# Generated or per-checkout files that a copy must not inherit.
_SKIP_NAMES = {"database.sqlite", "laravel.log"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _SKIP_NAMES}
    rel = Path(directory).relative_to(APP_SRC).as_posix()
    if rel in ("bootstrap/cache", "storage/framework/sessions",
               "storage/framework/views", "storage/framework/cache/data"):
        skip |= {n for n in names if n != ".gitignore"}
    return skip


def make_app_copy(dest: Path) -> Path:
    """Copy the demo app to ``dest`` and run the setup script on the copy."""
    app = dest / "laravel-app"
    shutil.copytree(APP_SRC, app, ignore=_ignore)
    subprocess.run(["sh", str(SETUP), str(app)], check=True,
                   capture_output=True, timeout=120)
    return app


def php_env(app: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["ASKR_APP_BASE"] = str(app)
    env.update(extra)
    return env


def sqlite_rows(app: Path, sql: str) -> list[tuple]:
    import sqlite3

    con = sqlite3.connect(app / "database" / "database.sqlite", timeout=10)
    try:
        with con:  # commits, so a DELETE sticks
            return con.execute(sql).fetchall()
    finally:
        con.close()


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str
    memory: int = 0  # worker's memory_get_usage() after the request (stub)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def json(self) -> object:
        return json.loads(self.body)


class StubWorker:
    """examples/laravel-worker.php under php-cli with the stub SAPI."""

    def __init__(self, app: Path) -> None:
        cmd = [PHP, "-d", "display_errors=stderr",
               "-d", f"auto_prepend_file={STUB}",
               str(REPO / "examples" / "laravel-worker.php")]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=php_env(app), text=True)

    def request(self, method: str, uri: str, headers: dict[str, str],
                form: dict[str, str] | None = None) -> Response:
        line = json.dumps({"method": method, "uri": uri,
                           "headers": headers, "form": form})
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("worker died: " + self.stop())
        data = json.loads(reply)
        return Response(data["status"], [tuple(h) for h in data["headers"]],
                        data["body"], data.get("memory", 0))

    def stop(self) -> str:
        """End the loop (empty line) and return what the worker logged."""
        try:
            # communicate() sends the empty line, then closes stdin (EOF).
            _, err = self.proc.communicate("\n", timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, ValueError):
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""


class CliServer:
    """``php -S`` on an ephemeral port serving the app's public/index.php."""

    def __init__(self, app: Path) -> None:
        public = app / "public"
        self.proc = subprocess.Popen(
            [PHP, "-S", "127.0.0.1:0", "-t", str(public),
             str(public / "index.php")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=php_env(app), text=True)
        self.port = self._read_port()

    def _read_port(self) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                return int(found.group(1))
        self.stop()
        raise RuntimeError("php -S did not report its port")

    def request(self, method: str, uri: str, headers: dict[str, str],
                form: dict[str, str] | None = None,
                body: bytes | None = None) -> Response:
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers = {**headers,
                       "Content-Type": "application/x-www-form-urlencoded"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, uri, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            return Response(resp.status, list(resp.getheaders()), text)
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()


@dataclass
class Client:
    """One browser: a cookie jar on top of a transport."""

    transport: StubWorker | CliServer
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, uri: str,
                form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None,
                **kwargs: object) -> Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        resp = self.transport.request(method, uri, sent, form, **kwargs)
        for line in resp.set_cookies():
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", "deleted"):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def get(self, uri: str, **kwargs: object) -> Response:
        return self.request("GET", uri, **kwargs)

    def post(self, uri: str, form: dict[str, str] | None = None,
             **kwargs: object) -> Response:
        return self.request("POST", uri, form=form, **kwargs)

    def csrf_token(self, page: str = "/form") -> str:
        resp = self.get(page)
        found = re.search(r'name="_token" value="([^"]+)"', resp.body)
        assert resp.status == 200 and found, resp.body[:300]
        return found.group(1)

    def login(self, email: str, password: str = "secret") -> Response:
        token = self.csrf_token("/login")
        return self.post("/login", {"_token": token, "email": email,
                                    "password": password})


def php_script_cmd(script: Path, askr_stop: bool = False) -> list[str]:
    """php-cli command for a script; askr_stop adds askr_should_stop()."""
    cmd = [PHP, "-d", "display_errors=stderr"]
    if askr_stop:
        cmd += ["-d", f"auto_prepend_file={STOP_STUB}"]
    return cmd + [str(script)]


def run_php_script(script: Path, app: Path, timeout: float,
                   askr_stop: bool = False,
                   **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(php_script_cmd(script, askr_stop),
                          env=php_env(app, **env), capture_output=True,
                          check=False,
                          text=True, timeout=timeout)
