"""Microseconds per hello-world request through the PHP bridge.

    .venv/bin/python bench/bridge_bench.py [-n 20000]

Measures the bridge alone (no sockets, no HTTP): classic mode (one script
run per request: request start-up, execute, shutdown) and worker mode (one
long-lived script, askr_handle_request() per request), with opcache on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from askr.php import bridge

HELLO = "<?php echo 'Hello, world!';\n"
WORKER = """<?php
while (askr_handle_request(function () { echo 'Hello, world!'; })) {}
"""


def env_for(script: str) -> list[tuple[bytes, bytes]]:
    pairs = {
        "SERVER_SOFTWARE": "Askr/bench",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/hello.php",
        "QUERY_STRING": "",
        "SCRIPT_NAME": "/hello.php",
        "SCRIPT_FILENAME": script,
        "DOCUMENT_ROOT": os.path.dirname(script),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "localhost:8080",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "*/*",
    }
    return [(k.encode(), v.encode()) for k, v in pairs.items()]


class Job:
    body = b""
    body_fd = -1

    def __init__(self, env: list, remaining: list[int] | None = None) -> None:
        self.env = env
        self.remaining = remaining
        self.sends = 0

    def send(self, status: int, headers, data: bytes, last: bool) -> bool:
        self.sends += 1
        return True

    def next_job(self) -> Job | None:
        if self.remaining[0] <= 0:
            return None
        self.remaining[0] -= 1
        return self._next

    def chain(self) -> Job:
        self._next = self
        return self


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="requests per mode")
    args = ap.parse_args()

    bridge.startup(
        "zend_extension=opcache.so\nopcache.enable=1\nopcache.validate_timestamps=0\n"
        # the scripts are written just now: cache them anyway
        "opcache.file_update_protection=0\n",
        lambda level, msg: print("php:", msg, file=sys.stderr),
    )
    with tempfile.TemporaryDirectory() as d:
        hello = os.path.join(d, "hello.php")
        worker = os.path.join(d, "worker.php")
        with open(hello, "w") as f:
            f.write(HELLO)
        with open(worker, "w") as f:
            f.write(WORKER)

        job = Job(env_for(hello))
        for _ in range(500):
            bridge.run_script(job)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.n):
            bridge.run_script(job)
        classic = (time.perf_counter() - t0) / args.n * 1e6
        classic_cpu = (time.process_time() - c0) / args.n * 1e6

        remaining = [args.n]
        wjob = Job(env_for(worker), remaining).chain()
        t0, c0 = time.perf_counter(), time.process_time()
        result = bridge.run_worker(wjob)
        worker_us = (time.perf_counter() - t0) / args.n * 1e6
        worker_cpu = (time.process_time() - c0) / args.n * 1e6
        assert result == "done", result
        assert wjob.sends == args.n + 1, wjob.sends

    # CPU time is the steadier number on a busy machine
    print(f"classic: {classic:.1f} us/request wall, {classic_cpu:.1f} us CPU")
    print(f"worker:  {worker_us:.1f} us/request wall, {worker_cpu:.1f} us CPU")


if __name__ == "__main__":
    main()
