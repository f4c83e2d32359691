"""The master under load, with real processes on loopback.

Every scenario takes the worker target and its deployment as fixtures
(``deployment``): ``fake`` is tests/fake_worker.py.  The real PHP worker
can be added to ``TARGETS`` with a deployment class offering the same
surface as ``FakeDeployment``: ``target`` ("module:function"), ``root``,
``master_options`` (e.g. a config_file), ``deploy(name, boot_fail=,
fail_all=, boot_delay=)``, and an app answering GET / and /sleep?ms= with
"gen=<release name> pid=<pid>", /slow?s=, /fail, POST /upload, /grow?mb=.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import threading
import time

import pytest
from fake_worker import FakeDeployment, Load, MasterProcess
from php_deployment import PhpDeployment

TARGETS = {"fake": FakeDeployment, "php": PhpDeployment}

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=sorted(TARGETS))
def deployment(request, tmp_path):
    deployment = TARGETS[request.param](str(tmp_path / "app"))
    deployment.deploy("v1")
    return deployment


@pytest.fixture
def start_master(deployment, tmp_path):
    masters: list[MasterProcess] = []

    def start(**options) -> MasterProcess:
        log = str(tmp_path / f"master{len(masters)}.log")
        master = MasterProcess(deployment.target, deployment.root, log,
                               **{**deployment.master_options, **options})
        masters.append(master)
        master.wait_alive()
        return master

    yield start
    for master in masters:
        master.stop()


def pids(status: dict) -> set[int]:
    return {w["pid"] for w in status["workers"]}


def generations(load: Load) -> list[str]:
    return [re.search(r"gen=(\S+)", body).group(1)
            for _, code, body in load.results if code == 200]


def test_master_kill9_worker_under_load_only_its_request_fails(start_master):
    master = start_master(workers=3)
    before = master.status()
    victim = before["workers"][0]["pid"]

    with Load(master.listen, new_conns=2, keepalive=0) as load:
        load.wait_count(50)
        os.kill(victim, signal.SIGKILL)
        after = master.wait_for(
            lambda s: s["workers_alive"] == 3 and victim not in pids(s) and s,
            what="a replacement for the killed worker")
        load.wait_count(50)

    # One connection at a time per worker: at most the request it was
    # serving for each client thread can be lost.
    assert len(load.failures) <= 2, load.failures
    assert len(pids(after) - pids(before)) == 1
    assert "signal=SIGKILL (out of memory?)" in master.log()
    assert all(code == 200 for _, code, _ in load.results)


@pytest.mark.parametrize("trigger", ["sighup", "api"])
def test_master_rolling_reload_under_load_loses_nothing(start_master,
                                                         deployment, trigger):
    master = start_master(workers=3)
    old = pids(master.status())

    with Load(master.listen, new_conns=1, keepalive=1) as load:
        load.wait_count(30)
        deployment.deploy("v2")
        if trigger == "sighup":
            master.signal(signal.SIGHUP)
        else:
            code, _, body = master.admin("POST", "/api/reload")
            assert code == 202, body
        master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None
                        and s["workers_alive"] == 3
                        and all(w["generation"] == 2 for w in s["workers"]),
                        what="reload to finish")
        load.wait_count(30)

    assert load.failures == []
    seen = generations(load)
    assert seen[0] == "v1" and seen[-1] == "v2"
    assert set(seen[-10:]) == {"v2"}
    assert not old & pids(master.status())
    assert master.listen  # the same listen address served throughout
    assert "reload finished generation=2" in master.log()


def test_master_reload_reaches_workers_kept_busy_by_keepalive_clients(
        start_master, deployment):
    # Eight keep-alive clients over two workers: each worker always has a
    # request queued, so it never goes idle.  An old worker must still see
    # its SIGTERM between requests and leave; before, the old code served
    # on until the load stopped and the reload never finished under load.
    master = start_master(workers=2)

    with Load(master.listen, new_conns=0, keepalive=8,
              path="/sleep?ms=20") as load:
        load.wait_count(50)
        deployment.deploy("v2")
        started = time.monotonic()
        code, _, body = master.admin("POST", "/api/reload")
        assert code == 202, body
        master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None
                        and all(w["generation"] == 2 for w in s["workers"]),
                        timeout=20, what="reload to finish under load")
        took = time.monotonic() - started
        load.wait_count(50)

    assert load.failures == []
    assert set(generations(load)[-20:]) == {"v2"}
    # About 2 s here.  Without the check between requests the old workers
    # held on until the master's stop timeout killed them (10 s).
    assert took < 5, took


def test_master_reload_during_reload_is_queued(start_master, deployment):
    master = start_master(workers=2)
    deployment.deploy("v2", boot_delay=0.3)

    first = master.admin("POST", "/api/reload")
    second = master.admin("POST", "/api/reload")

    assert first[0] == 202 and b'"queued": false' in first[2]
    assert second[0] == 202 and b'"queued": true' in second[2]
    master.wait_for(lambda s: s["generation"] == 3 and s["reload"] is None
                    and all(w["generation"] == 3 for w in s["workers"]),
                    what="the queued reload to run after the first")
    log = master.log()
    assert log.index("reload finished generation=2") < log.index(
        "reload started generation=3")


def test_master_canary_with_boot_failure_keeps_old_code(start_master,
                                                         deployment):
    master = start_master(workers=3)
    old = pids(master.status())

    with Load(master.listen, new_conns=1, keepalive=1) as load:
        deployment.deploy("v2", boot_fail=True)
        code, _, _ = master.admin("POST", "/api/reload?canary=1")
        assert code == 202
        master.wait_log("canary UNHEALTHY — aborting reload; remaining "
                        "workers keep old code")
        master.wait_for(lambda s: s["reload"] is None, what="abort")
        load.wait_count(30)

    status = master.wait_alive(3)
    assert load.failures == []
    assert set(generations(load)) == {"v1"}
    assert pids(status) == old
    assert all(w["generation"] == 1 for w in status["workers"])
    assert 'askr_reloads_total{outcome="aborted"} 1.0' in \
        master.admin("GET", "/metrics")[2].decode()


def test_master_canary_serving_500s_is_rolled_back(start_master, deployment):
    master = start_master(workers=3, canary_seconds=1.5)

    with Load(master.listen, new_conns=2, keepalive=0) as load:
        load.wait_count(20)
        deployment.deploy("v2", fail_all=True)
        master.admin("POST", "/api/reload?canary=1")
        master.wait_log("canary UNHEALTHY — aborting reload")
        status = master.wait_for(
            lambda s: s["workers_alive"] == 3 and s["reload"] is None
            and all(w["generation"] == 1 for w in s["workers"]) and s,
            what="the canary to be replaced by an old-code worker")
        mark = time.monotonic()
        load.wait_count(40)

    assert load.failures == []
    assert status["generation"] == 1
    # Only the canary answered 500, and only while it was being watched.
    assert any(code == 500 for _, code, _ in load.results)
    after = [(code, body) for t, code, body in load.results if t > mark]
    assert after and all(code == 200 and "gen=v1" in body
                         for code, body in after)
    assert "canary healthy" not in master.log()


def test_master_canary_healthy_rolls_the_rest(start_master, deployment):
    master = start_master(workers=2, canary_seconds=0.5)
    with Load(master.listen, new_conns=1, keepalive=0) as load:
        deployment.deploy("v2")
        master.admin("POST", "/api/reload?canary=1")
        master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None,
                        what="canary reload to finish")
        load.wait_count(20)
    assert load.failures == []
    assert "canary healthy — rolling the rest" in master.log()
    assert generations(load)[-1] == "v2"


def recycle_windows(log: str) -> list[tuple[float, float]]:
    """(successor spawned, old worker exited) times of every max_requests
    recycle, from the master's log lines."""
    stamp = r"^\S+ (\d+):(\d+):(\d+),(\d+) "

    def seconds(match: re.Match) -> float:
        h, m, s, ms = (int(g) for g in match.groups()[:4])
        return h * 3600 + m * 60 + s + ms / 1000

    started: dict[str, float] = {}
    windows = []
    for line in log.splitlines():
        begin = re.match(stamp + r".*worker recycling pid=(\d+) "
                         r"reason=max_requests", line)
        if begin:
            started[begin.group(5)] = seconds(begin)
            continue
        end = re.match(stamp + r".*worker exited pid=(\d+) pool=web "
                       r"reason=max_requests", line)
        if end and end.group(5) in started:
            windows.append((started.pop(end.group(5)), seconds(end)))
    return windows


def test_master_max_requests_recycles_one_worker_at_a_time(start_master):
    master = start_master(workers=3, max_requests=25, max_requests_jitter=24)
    quotas = sorted(w["max_requests"] for w in master.status()["workers"])
    assert quotas == [25, 33, 41]

    low_water = []
    with Load(master.listen, new_conns=3, keepalive=0,
              path="/sleep?ms=15") as load:
        # Recycles are serial and a worker serves on while it waits for
        # its turn, so allow for more requests than the quotas' sum.
        deadline = time.monotonic() + 30
        while load.count() < 450 and time.monotonic() < deadline:
            low_water.append(master.status()["workers_alive"])
            time.sleep(0.02)
    master.wait_for(lambda s: s["workers_alive"] == 3
                    and all(w["state"] == "ready" for w in s["workers"]),
                    what="the last recycle to end")

    assert load.failures == []
    assert load.count() >= 450
    served_by = {body.split("pid=")[1] for _, _, body in load.results}
    assert len(served_by) >= 9        # every worker recycled at least twice
    windows = sorted(recycle_windows(master.log()))
    assert len(windows) >= 6
    # One recycle at a time: each ends (old worker gone) before the next
    # starts (successor spawned), whatever the quotas drifted to.
    for (_, first_end), (second_start, _) in itertools.pairwise(windows):
        assert first_end <= second_start, windows
    # Successor first: the pool never has fewer than 3 ready workers.
    assert min(low_water) >= 3
    assert "reason=max_requests signal" not in master.log()


def test_master_sigterm_waits_for_slow_request_then_exits_0(start_master):
    master = start_master(workers=2)
    result = {}

    def slow() -> None:
        result["response"] = master.get("/slow?s=1.5")

    thread = threading.Thread(target=slow)
    thread.start()
    master.wait_for(lambda s: any(w["request_age"] is not None
                                  for w in s["workers"]),
                    what="the slow request to start")
    master.signal(signal.SIGTERM)
    code, _, _ = master.admin("GET", "/ready")
    assert code == 503
    thread.join(10)

    assert result["response"][0] == 200
    assert "slow done" in result["response"][1]
    assert master.wait(10) == 0
    assert "master exiting code=0" in master.log()


def test_master_kills_worker_past_request_timeout(start_master, deployment):
    master = start_master(workers=2, request_timeout=0.5, timeout_grace=0.3)
    before = pids(master.status())
    victim = {}

    def slow() -> None:
        try:
            victim["response"] = master.get("/slow?s=20", timeout=15)
        except OSError as exc:
            victim["error"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    if isinstance(deployment, PhpDeployment):
        # A PHP worker ends the request itself at request_timeout: the
        # client gets a 504 and the worker is replaced.
        master.wait_log("request timeout after")
    else:
        # The fake worker cannot: the master's backstop kills it.
        master.wait_log("request timeout: worker ")
    thread.join(15)
    status = master.wait_for(
        lambda s: s["workers_alive"] == 2 and pids(s) != before and s,
        what="the timed-out worker to be replaced")

    if isinstance(deployment, PhpDeployment):
        assert victim["response"][0] == 504
    else:
        assert "error" in victim
        assert re.search(r"request timeout: worker \d+ busy \d+s",
                         master.log())
    assert status["workers_alive"] == 2
    assert master.get("/")[0] == 200


def test_master_replaces_worker_over_memory_limit_first(start_master):
    master = start_master(workers=2, max_worker_memory=120 * 1024 * 1024)
    before = pids(master.status())

    code, body = master.get("/grow?mb=150")
    assert code == 200
    grown = int(body.split("pid=")[1])
    with Load(master.listen, new_conns=1, keepalive=0) as load:
        status = master.wait_for(
            lambda s: grown not in pids(s) and s["workers_alive"] == 2 and s,
            what="the bloated worker to be replaced")
        load.wait_count(10)

    assert grown in before
    assert load.failures == []
    assert len(pids(status) - before) == 1
    assert f"over memory limit pid={grown}" in master.log()


def test_master_backs_off_when_workers_die_during_boot(deployment,
                                                       tmp_path):
    deployment.deploy("broken", boot_fail=True)
    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=3,
                           backoff_base=0.1, backoff_max=5.0)
    try:
        time.sleep(2.0)
        code, _, _ = master.admin("GET", "/health")
        spawned = master.log().count("worker spawned")
    finally:
        master.stop()

    assert code == 503
    # 3 at start, then one probe per back-off step (0.1, 0.2, 0.4, 0.8 s...)
    assert 3 < spawned <= 10, master.log()
    assert "worker died during boot" in master.log()


def test_master_supervises_services_and_rolls_them(start_master, deployment):
    master = start_master(workers=1, services=(
        "queue=tests.fake_worker:main:2",))
    status = master.wait_for(
        lambda s: len(s["services"][0]["processes"]) == 2 and all(
            p["counters"].get("jobs") for p in s["services"][0]["processes"])
        and s, what="queue processes reporting jobs")
    old = {p["pid"] for p in status["services"][0]["processes"]}

    deployment.deploy("v2")
    master.signal(signal.SIGHUP)
    status = master.wait_for(
        lambda s: s["reload"] is None and s["generation"] == 2 and all(
            p["generation"] == 2 and p["state"] == "ready"
            for p in s["services"][0]["processes"])
        and len(s["services"][0]["processes"]) == 2 and s,
        what="services rolled")

    assert status["services"][0]["name"] == "queue"
    assert not old & {p["pid"] for p in status["services"][0]["processes"]}


def test_master_canary_that_never_gets_ready_is_unhealthy(start_master,
                                                          deployment):
    master = start_master(workers=2, canary_seconds=0.5)
    old = pids(master.status())
    deployment.deploy("v2", boot_delay=5)

    master.admin("POST", "/api/reload?canary=1")
    master.wait_log("canary UNHEALTHY")
    master.wait_for(lambda s: s["reload"] is None and pids(s) == old,
                    what="abort, with the canary gone")

    assert "reason=not ready within 0.5s" in master.log()
    assert master.get("/")[1].startswith("gen=v1")


def test_master_stop_timeout_kills_stragglers_and_exits_0(start_master):
    master = start_master(workers=2, stop_timeout=0.5)
    errors = []

    def slow() -> None:
        try:
            master.get("/slow?s=20", timeout=15)
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    master.wait_for(lambda s: any(w["request_age"] for w in s["workers"]),
                    what="the slow request to start")
    started = time.monotonic()
    master.signal(signal.SIGTERM)

    assert master.wait(10) == 0
    thread.join(10)
    assert time.monotonic() - started < 5
    assert "stop timeout: killing worker" in master.log()
    assert errors


def test_master_second_sigint_exits_at_once(start_master):
    master = start_master(workers=2)
    thread = threading.Thread(target=lambda: pytest.raises(
        OSError, master.get, "/slow?s=20", timeout=15))
    thread.start()
    master.wait_for(lambda s: any(w["request_age"] for w in s["workers"]),
                    what="the slow request to start")

    master.signal(signal.SIGINT)
    master.wait_log("shutting down on SIGINT")
    started = time.monotonic()
    master.signal(signal.SIGINT)

    assert master.wait(5) != 0
    assert time.monotonic() - started < 3
    thread.join(10)
    assert "second SIGINT: exiting at once" in master.log()


def test_master_runs_exec_targets_too(deployment, tmp_path):
    if isinstance(deployment, PhpDeployment):
        pytest.skip("exec'd workers are a launcher feature; the PHP worker "
                    "is forked (askr.worker:main)")
    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=2,
                           exec_=True)
    try:
        master.wait_alive()
        code, body = master.get("/")
        deployment.deploy("v2")
        master.signal(signal.SIGHUP)
        master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None
                        and all(w["generation"] == 2 for w in s["workers"]),
                        what="reload of exec'd workers")
        after = master.get("/")[1]
    finally:
        master.stop()

    assert code == 200 and body.startswith("gen=v1")
    assert after.startswith("gen=v2")


def test_master_plain_reload_with_boot_failure_keeps_old_workers(start_master,
                                                                 deployment):
    master = start_master(workers=2)
    old = pids(master.status())

    with Load(master.listen, new_conns=1, keepalive=1) as load:
        deployment.deploy("v2", boot_fail=True)
        master.signal(signal.SIGHUP)
        master.wait_log("reload failed generation=2")
        status = master.wait_for(lambda s: s["reload"] is None and s,
                                 what="the failed reload to end")
        load.wait_count(20)

    assert load.failures == []
    assert set(generations(load)) == {"v1"}
    assert pids(status) == old and status["generation"] == 1
    assert 'askr_reloads_total{outcome="failed"} 1.0' in \
        master.admin("GET", "/metrics")[2].decode()


def test_master_sigterm_during_slow_upload_lets_it_finish(start_master):
    master = start_master(workers=2)
    body = b"x" * 400_000
    result = {}

    def upload() -> None:
        result["response"] = MasterProcess._request(
            master.listen, "POST", "/upload", body, 15)

    thread = threading.Thread(target=upload)
    thread.start()
    master.wait_for(lambda s: any(w["request_age"] for w in s["workers"]),
                    what="the upload to start")
    master.signal(signal.SIGTERM)
    thread.join(15)

    status, _, reply = result["response"]
    assert status == 200
    assert reply.startswith(b"received=400000 ")
    assert master.wait(10) == 0


def slow_upload(address: str, size: int, seconds: float) -> bytes:
    """POST /upload with the body trickling in over ``seconds``; the raw
    response (the server closes after it: Connection: close)."""
    host, _, port = address.rpartition(":")
    steps = 30
    with socket.create_connection((host, int(port)), 10) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: askr.test\r\n"
                     b"Connection: close\r\n"
                     b"Content-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        for i in range(steps):
            part = size // steps + (size % steps if i == steps - 1 else 0)
            sock.sendall(b"u" * part)
            time.sleep(seconds / steps)
        sock.settimeout(15)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def test_master_reload_during_slow_upload_finishes_it_on_the_old_worker(
        start_master, deployment):
    # Three workers: the fake serves one connection at a time, so one
    # holds the upload, one the kept-alive client, one the new connections.
    master = start_master(workers=3)
    old = pids(master.status())
    result = {}

    def upload() -> None:
        result["reply"] = slow_upload(master.listen, 300_000, 3.0)

    with Load(master.listen, new_conns=1, keepalive=1) as load:
        load.wait_count(20)
        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(0.5)     # the upload is under way on one worker
        deployment.deploy("v2")
        master.signal(signal.SIGHUP)
        thread.join(20)
        master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None
                        and all(w["generation"] == 2 for w in s["workers"]),
                        what="reload to finish")
        load.wait_count(20)

    head, _, body = result["reply"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    received, pid = re.match(rb"received=(\d+) pid=(\d+)", body).groups()
    assert int(received) == 300_000
    assert int(pid) in old                 # finished where it started
    assert load.failures == []
    assert set(generations(load)) == {"v1", "v2"}
    # Everyone else is answered promptly throughout the reload.
    assert max(load.latencies) < 0.1, sorted(load.latencies)[-5:]


def test_master_logs_worker_deaths_by_cause(start_master):
    master = start_master(workers=2)
    first, second = sorted(pids(master.status()))

    os.kill(first, signal.SIGUSR2)
    os.kill(second, signal.SIGTERM)
    master.wait_for(lambda s: s["workers_alive"] == 2
                    and not {first, second} & pids(s), what="replacements")

    log = master.log()
    assert re.search(rf"WARNING askr.supervisor worker exited pid={first} "
                     r"pool=web reason=signal signal=SIGUSR2", log)
    # The fake drains on SIGTERM and exits 0: an orderly exit, info level.
    assert re.search(rf"INFO askr.supervisor worker exited pid={second} "
                     r"pool=web reason=drain code=0", log)


def test_master_halts_when_workers_cannot_init_php(deployment, tmp_path):
    if isinstance(deployment, PhpDeployment):
        pytest.skip("a release cannot make PHP's module start-up fail; the "
                    "exit-code path is the same and runs with the fake")
    deployment.deploy("v9", boot_fail=3)    # errors.PHP_INIT_FAILED
    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=2)
    try:
        code = master.wait(10)
    finally:
        master.stop()

    assert code == 3
    assert "worker cannot start pool=web code=3: halting" in master.log()


def test_master_rolls_no_overlap_service_stop_then_start(start_master,
                                                         deployment):
    master = start_master(workers=1, services=(
        "scheduler=tests.fake_worker:main:1:no-overlap",))
    [old] = master.wait_for(
        lambda s: [p["pid"] for p in s["services"][0]["processes"]
                   if p["state"] == "ready"], what="scheduler ready")

    deployment.deploy("v2")
    master.signal(signal.SIGHUP)
    status = master.wait_for(
        lambda s: s["reload"] is None and s["generation"] == 2
        and [p["generation"] for p in s["services"][0]["processes"]] == [2]
        and s, what="scheduler rolled")

    [new] = status["services"][0]["processes"]
    log = master.log()
    exited = log.index(f"worker exited pid={old} pool=scheduler")
    spawned = log.index(f"worker spawned pid={new['pid']} pool=scheduler")
    assert exited < spawned


def test_master_survives_a_worker_breaking_the_protocol(tmp_path):
    deployment = FakeDeployment(str(tmp_path / "app"))
    deployment.deploy("v1")
    open(os.path.join(tmp_path, "app", "releases", "v1", "DOUBLE_READY"),
         "w").close()
    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=1)
    try:
        master.wait_log("control protocol error pid=")
        status = master.wait_alive(1)
        code, body = master.get("/")
    finally:
        master.stop()

    assert code == 200 and body.startswith("gen=v1")
    assert status["workers_alive"] == 1
    assert "worker in READY got READY_RECEIVED" in master.log()
