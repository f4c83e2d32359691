"""Run PHP requests through askr.php.bridge for the differential tests.

Run as a subprocess by tests/test_bridge_matches_php_cgi.py:

    python tests/bridge_runner.py INI_FILE

It calls bridge.startup() once, then reads one job per line on stdin and
writes one result per line, both JSON:

    job:    {"id": str, "env": [[b64 name, b64 value], ...],
             "body_path": str | null, "body_mode": "memory" | "fd"}
    result: {"id": str, "sends": [{"status": int, "headers": [b64] | null,
             "nbytes": int, "last": bool}], "body": b64,
             "logs": [[level, message]], "error": str | null}

Before the first job it prints {"ready": true} (or {"startup_error": ...}
and exits 2).  A crash inside PHP kills this process: the test sees EOF
on its pipe, fails that case and starts a new runner.

The protocol runs over private copies of the original stdin/stdout; fds 0
and 1 are pointed at /dev/null and stderr, so nothing PHP reads or writes
through them (php://stdin, php://stdout, C-level printf) can corrupt it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from typing import Any

_b64e = base64.b64encode
_b64d = base64.b64decode


class Job:
    """A job as DESIGN.md describes it, recording every send() call."""

    def __init__(self, env: list[tuple[bytes, bytes]], body: bytes, body_fd: int):
        self.env = env
        self.body = body
        self.body_fd = body_fd
        self.sends: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []

    def send(
        self, status: int, headers: list[bytes] | None, data: bytes, last: bool
    ) -> bool:
        self.sends.append({
            "status": int(status),
            "headers": None if headers is None
            else [_b64e(bytes(h)).decode() for h in headers],
            "nbytes": len(data),
            "last": bool(last),
        })
        self.chunks.append(bytes(data))
        return True

    def next_job(self) -> None:
        return None


def main() -> int:
    ini_path = sys.argv[1]
    with open(ini_path) as fh:
        ini = fh.read()

    # Keep the protocol channels away from fds 0 and 1 (see docstring).
    jobs_in = os.fdopen(os.dup(0), "rb")
    results_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)

    def emit(obj: dict[str, Any]) -> None:
        results_out.write(json.dumps(obj).encode() + b"\n")
        results_out.flush()

    logs: list[list[Any]] = []

    def log(level: int, message: str) -> None:
        logs.append([int(level), str(message)])

    try:
        from askr.php import bridge

        bridge.startup(ini, log)
    except BaseException:  # noqa: BLE001 - report any startup failure
        emit({"startup_error": traceback.format_exc()})
        return 2
    emit({"ready": True, "startup_logs": logs[:]})

    for line in jobs_in:
        spec = json.loads(line)
        env = [(_b64d(n), _b64d(v)) for n, v in spec["env"]]
        body, body_fd = b"", -1
        if spec["body_path"]:
            if spec["body_mode"] == "fd":
                body_fd = os.open(spec["body_path"], os.O_RDONLY)
            else:
                with open(spec["body_path"], "rb") as fh:
                    body = fh.read()

        job = Job(env, body, body_fd)
        del logs[:]
        error = None
        try:
            bridge.run_script(job)
        except BaseException:  # noqa: BLE001 - the test shows it
            error = traceback.format_exc()
        finally:
            if body_fd >= 0:
                os.close(body_fd)

        emit({
            "id": spec["id"],
            "sends": job.sends,
            "body": _b64e(b"".join(job.chunks)).decode(),
            "logs": logs[:],
            "error": error,
        })

    bridge.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
