"""Test-side handle on tests/php/bridge_runner.py (one PHP per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
if not os.path.exists(PYTHON):
    PYTHON = sys.executable


class Runner:
    """One bridge process; commands are answered in order, one JSON line each."""

    def __init__(self, ini: str = "", timeout: float = 0) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "bridge_runner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        self.info = self.call({"op": "startup", "ini": ini, "timeout": timeout})

    def call(self, cmd: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bridge runner died (exit {self.proc.wait(5)})")
        return json.loads(line)

    def run(self, script: str, **kw) -> dict:
        return self.call({"op": "run", "job": job(script, **kw)})

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def job(
    script: str,
    query: str = "",
    method: str = "GET",
    headers: dict | None = None,
    body: str = "",
    content_type: str | None = None,
    body_file: str | None = None,
    abort_after: int | None = None,
) -> dict:
    path = str(HERE / script) if not script.startswith("/") else script
    env = [
        ["SERVER_SOFTWARE", "Askr/test"],
        ["SERVER_PROTOCOL", "HTTP/1.1"],
        ["REQUEST_METHOD", method],
        ["REQUEST_URI", "/" + os.path.basename(path) + ("?" + query if query else "")],
        ["QUERY_STRING", query],
        ["SCRIPT_NAME", "/" + os.path.basename(path)],
        ["SCRIPT_FILENAME", path],
        ["DOCUMENT_ROOT", str(HERE)],
        ["REMOTE_ADDR", "127.0.0.1"],
        ["REMOTE_PORT", "40000"],
    ]
    size = len(body.encode("latin-1"))
    if body_file:
        size += os.path.getsize(body_file)
    if body or body_file or method == "POST":
        env.append(["CONTENT_LENGTH", str(size)])
        env.append(
            ["CONTENT_TYPE", content_type or "application/x-www-form-urlencoded"]
        )
    for k, v in (headers or {}).items():
        env.append(["HTTP_" + k.upper().replace("-", "_"), v])
    return {
        "env": env,
        "body": body,
        "body_file": body_file,
        "abort_after": abort_after,
    }


def multipart(fields: dict, files: dict, boundary: str = "AskrBoundary42") -> tuple:
    """Body and content type for a multipart/form-data request."""
    parts = []
    for k, v in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        )
    for k, (fname, content) in files.items():
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{k}"; filename="{fname}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n{content}\r\n"
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts), f"multipart/form-data; boundary={boundary}"


def body_of(answer: dict) -> str:
    return "".join(s[2] for s in answer["sends"])


def headers_of(answer: dict) -> list[str]:
    return answer["sends"][0][1]


def status_of(answer: dict) -> int:
    return answer["sends"][0][0]
