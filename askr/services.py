"""Queue workers and the scheduler: long-running PHP scripts under the master.

Each service process embeds PHP like a web worker but has no listener: it
runs one script (examples/askr-queue.php, examples/askr-scheduler.php)
that boots the Laravel app once and then works in-process (``queue:work``,
``schedule:run`` every interval), with no ``php artisan`` subprocess.

Stopping.  While the script runs, no Python code runs except inside the
bridge's callbacks, so a Python-level SIGTERM handler would only fire
after the script ended.  The bridge therefore keeps a C-level stop flag
set by SIGTERM, which the script polls through ``askr_should_stop()``
between jobs or runs: a running job finishes, then the script returns.

Counters.  What the script writes to STDOUT reaches ``_on_output`` (the
bridge routes STDOUT/STDERR to the log callback); lines Laravel prints
per job ("Processed:") and per scheduler run are counted there and
reported to the master, which lists them in /api/status.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from askr import control, errors

log = logging.getLogger("askr.service")

STATS_EVERY = 1.0


class ServiceJob:
    """The one job a service runs: its script, as a long request."""

    body = b""
    body_fd = -1

    def __init__(self, env: list) -> None:
        self.env = env

    def send(self, status: int, headers: Any, data: bytes, last: bool) -> bool:
        if data:
            for line in data.decode("utf-8", "replace").splitlines():
                log.info("%s", line)
        return True

    def next_job(self) -> None:
        return None


class Counters:
    def __init__(self, spec: Any, kind: str) -> None:
        self.spec = spec
        self.kind = kind
        self.jobs = 0
        self.failed = 0
        self.runs = 0
        self.last_run: float | None = None
        self.sent = 0.0

    def on_output(self, level: int, message: str) -> None:
        text = message.rstrip()
        logging.getLogger(f"askr.{self.kind}").log(level, "%s", text)
        counted = True
        if "Processed:" in text:
            self.jobs += 1
        elif "Failed:" in text:
            self.failed += 1
        elif "schedule:run" in text or "Running scheduled" in text:
            self.runs += 1
            self.last_run = time.time()
        else:
            counted = False
        # A count is sent at once: PHP may then sleep in queue:work for
        # seconds without printing, and a throttled count would wait for
        # the next line (one small packet per job is cheap).
        self.report(force=counted)

    def report(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.sent < STATS_EVERY:
            return
        self.sent = now
        control.stats(self.spec.control, requests=self.jobs + self.runs,
                      errors5xx=self.failed, rss=control.rss_bytes(),
                      busy_since=None, jobs=self.jobs, failed=self.failed,
                      runs=self.runs, last_run=self.last_run)


def queue_main(spec: Any) -> int:
    cfg = spec.config
    os.environ["ASKR_QUEUE_MAX_JOBS"] = str(cfg.queue.max_jobs)
    os.environ["ASKR_QUEUE_MAX_TIME"] = str(int(cfg.queue.max_time))
    return _run(spec, cfg.queue.script, "queue")


def scheduler_main(spec: Any) -> int:
    cfg = spec.config
    os.environ["ASKR_SCHEDULER_INTERVAL"] = str(cfg.scheduler.interval)
    return _run(spec, cfg.scheduler.script, "scheduler")


def _run(spec: Any, script: str, kind: str) -> int:
    from askr.php import bridge
    from askr.worker import php_ini

    cfg = spec.config
    script = os.path.realpath(script)
    app_base = cfg.worker.app_base or os.path.dirname(script)
    os.environ["ASKR_APP_BASE"] = app_base
    counters = Counters(spec, kind)

    try:
        bridge.startup(php_ini(cfg.worker.ini), counters.on_output)
    except Exception as exc:  # noqa: BLE001 - reported with exit code
        log.error("%s %d: PHP start-up failed: %s", kind, os.getpid(), exc)
        return errors.PHP_INIT_FAILED
    bridge.install_stop_signal()

    env = [(k.encode(), v.encode(errors="surrogateescape"))
           for k, v in os.environ.items()]
    env += [(b"SCRIPT_FILENAME", script.encode()),
            (b"SCRIPT_NAME", os.path.basename(script).encode()),
            (b"ASKR_SERVICE", kind.encode())]

    control.ready(spec.control)
    log.info("%s %d: running %s", kind, os.getpid(), script)
    started = time.monotonic()
    try:
        bridge.run_script(ServiceJob(env))
    finally:
        counters.report(force=True)
        bridge.shutdown()

    # A script that ends at once is failing at boot: say so, so that the
    # master backs off instead of respawning it in a tight loop.
    if time.monotonic() - started < 1.0 and not bridge.stop_requested():
        log.error("%s script %s ended within a second", kind, script)
        return errors.WORKER_BOOT_FAILED
    return errors.OK
