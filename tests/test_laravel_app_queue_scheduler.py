"""Askr's in-process queue worker and scheduler scripts do their jobs.

examples/askr-queue.php runs `queue:work` and examples/askr-scheduler.php
runs `schedule:run` inside one booted PHP process.  Here both run under
php-cli against a throwaway copy of the demo app; the evidence is the rows
the demo's job and scheduled task write into SQLite.  Askr's
askr_should_stop() is replaced by tests/php_stubs/askr_should_stop_stub.php.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import laravel_harness as lh  # tests/php_stubs, on sys.path by conftest
import pytest

QUEUE = lh.REPO / "examples" / "askr-queue.php"
SCHEDULER = lh.REPO / "examples" / "askr-scheduler.php"

pytestmark = pytest.mark.skipif(
    shutil.which("php") is None
    or not Path("/usr/share/php/Illuminate/autoload.php").exists(),
    reason="needs php-cli and Debian's php-laravel-framework",
)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    return lh.make_app_copy(tmp_path_factory.mktemp("laravel-jobs"))


def _dispatch(app: Path, note: str) -> None:
    worker = lh.StubWorker(app)
    try:
        resp = lh.Client(worker).get(f"/dispatch?note={note}")
        assert resp.status == 200 and resp.json()["queued"] is True
    finally:
        worker.stop()


def _marks(app: Path) -> list[datetime]:
    rows = lh.sqlite_rows(app, "select ran_at from schedule_marks order by id")
    return [datetime.fromisoformat(r[0]) for r in rows]


def _wait_for_marks(app: Path, count: int, proc: subprocess.Popen,
                    timeout: float) -> list[datetime]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        marks = _marks(app)
        if len(marks) >= count or proc.poll() is not None:
            return marks
        time.sleep(0.05)
    return _marks(app)


@pytest.fixture
def scheduler(app):
    """Start the scheduler script; always stopped (and reaped) afterwards."""
    procs: list[subprocess.Popen] = []
    lh.sqlite_rows(app, "delete from schedule_marks")

    def start(askr_stop: bool = False, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            lh.php_script_cmd(SCHEDULER, askr_stop),
            env=lh.php_env(app, **env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def test_queue_script_processes_dispatched_job(app):
    _dispatch(app, "queued-by-test")

    done = lh.run_php_script(QUEUE, app, timeout=60, ASKR_QUEUE_MAX_JOBS="1",
                             ASKR_QUEUE_MAX_TIME="30")
    assert done.returncode == 0, done.stderr
    assert "Processed" in done.stdout

    notes = lh.sqlite_rows(app, "select note from job_marks")
    assert ("queued-by-test",) in notes
    assert lh.sqlite_rows(app, "select count(*) from jobs") == [(0,)]


def test_queue_script_exits_at_max_time_when_idle(app):
    started = time.monotonic()
    done = lh.run_php_script(QUEUE, app, timeout=30, ASKR_QUEUE_MAX_JOBS="100",
                             ASKR_QUEUE_MAX_TIME="1", ASKR_QUEUE_SLEEP="1")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10


def test_queue_script_stops_when_askr_asks(app, tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    started = time.monotonic()
    done = lh.run_php_script(QUEUE, app, timeout=30, askr_stop=True,
                             ASKR_QUEUE_MAX_TIME="60", ASKR_QUEUE_SLEEP="1",
                             ASKR_STUB_STOP_FILE=str(stop))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10


def test_scheduler_marks_every_interval_and_stops_on_sigterm(app, scheduler):
    started = datetime.now()
    proc = scheduler(ASKR_SCHEDULER_INTERVAL="2")

    marks = _wait_for_marks(app, 2, proc, timeout=10)
    assert len(marks) >= 2, proc.stderr.read() if proc.poll() is not None else ""
    # First run at the first 2 s boundary after start (plus boot time),
    # the next one boundary later (the first is a little late: warm-up).
    assert (marks[0] - started).total_seconds() < 5
    gap = (marks[1] - marks[0]).total_seconds()
    assert 1.0 < gap < 2.6, gap

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "askr-scheduler: stopping" in out


def test_scheduler_does_not_overlap_a_long_run(app, scheduler):
    # Each run takes 1.5 s with a 1 s interval: the boundary falling inside
    # a run is skipped, so a run never starts before the previous one ended
    # (gap >= 1.5 s) and runs stay on the 2 s grid (the first run's mark is
    # written a little late, after the first-call warm-up).
    proc = scheduler(ASKR_SCHEDULER_INTERVAL="1",
                     DEMO_SCHEDULE_TASK_SECONDS="1.5")
    marks = _wait_for_marks(app, 3, proc, timeout=12)
    assert len(marks) >= 3
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(marks)]
    assert all(1.5 <= g < 2.6 for g in gaps), gaps
    assert gaps[-1] > 1.9, gaps

    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert "skipped 1 boundary" in err


def test_scheduler_stops_when_askr_asks(app, scheduler, tmp_path):
    stop = tmp_path / "stop"
    proc = scheduler(askr_stop=True, ASKR_SCHEDULER_INTERVAL="1",
                     ASKR_STUB_STOP_FILE=str(stop))
    assert _wait_for_marks(app, 1, proc, timeout=8)

    stop.touch()
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "askr-scheduler: stopping" in out
