"""The demo Laravel app in worker mode under a real askr master, with its
queue worker and scheduler supervised by the same master."""

from __future__ import annotations

import hashlib
import http.client
import random
import time
from pathlib import Path

import laravel_harness as lh  # tests/php_stubs, on sys.path by conftest
import pytest
from askr_server import AskrServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

INI = """askr.php_ini = system
opcache.enable = 1
opcache.enable_cli = 1
memory_limit = 256M
expose_php = 0"""


class AskrTransport:
    """The harness's client transport, pointed at askr's port."""

    request = lh.CliServer.request

    def __init__(self, port: int) -> None:
        self.port = port


@pytest.fixture(scope="module")
def laravel(tmp_path_factory):
    work = tmp_path_factory.mktemp("laravel-askr")
    app = lh.make_app_copy(work)
    srv = AskrServer(work, {
        "server": {"root": str(app / "public"), "workers": 2},
        "worker": {"script": str(EXAMPLES / "laravel-worker.php"),
                   "app_base": str(app), "ini": INI},
        "queue": {"workers": 1, "script": str(EXAMPLES / "askr-queue.php")},
        "scheduler": {"script": str(EXAMPLES / "askr-scheduler.php"),
                      "interval": 2},
        "log": {"access": False},
    })
    srv.app = app
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, srv.log()[-3000:]


def client(srv) -> lh.Client:
    return lh.Client(AskrTransport(srv.port))


def test_plain_routes_answer(laravel):
    c = client(laravel)
    assert c.get("/text").body.startswith("Hello from Laravel")
    assert c.get("/json").json()["framework"].startswith("8.")
    rows = c.get("/db").json()
    assert len(rows["items"]) == 8
    blade = c.get("/blade")
    assert blade.status == 200 and "Total: 2960" in blade.body


def test_session_counter_counts_per_client(laravel):
    a, b = client(laravel), client(laravel)
    assert [a.get("/session").json()["counter"] for _ in range(3)] == [1, 2, 3]
    assert b.get("/session").json()["counter"] == 1


def test_upload_reaches_laravel(laravel):
    payload = bytes(random.Random(7).randbytes(300_000))
    boundary = "askrboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"blob.bin\"\r\nContent-Type: application/octet-stream"
            f"\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    resp = client(laravel).request(
        "POST", "/upload", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"},
        body=body)
    assert resp.status == 200, resp.body[:500]
    info = resp.json()
    assert info["size"] == len(payload)
    assert info["sha256"] == hashlib.sha256(payload).hexdigest()


def test_csrf_form_rejects_missing_token_and_accepts_valid(laravel):
    c = client(laravel)
    assert c.post("/form", {"name": "x"}).status == 419
    token = c.csrf_token("/form")
    assert c.post("/form", {"_token": token, "name": "x"}).status == 200


def test_request_after_exception_is_served_normally(laravel):
    c = client(laravel)
    assert c.get("/throw").status == 500
    assert c.get("/text").status == 200
    assert c.get("/session").json()["counter"] == 1


def test_two_clients_never_share_state_over_500_requests(laravel):
    alice, bob = client(laravel), client(laravel)
    assert alice.login("demo@example.com").status in (200, 302)
    assert bob.login("other@example.com").status in (200, 302)
    counts = {"alice": 0, "bob": 0}
    rng = random.Random(42)
    for i in range(500):
        name = rng.choice(["alice", "bob"])
        who = alice if name == "alice" else bob
        email = "demo@example.com" if name == "alice" else "other@example.com"
        step = i % 3
        if step == 0:
            counts[name] += 1
            assert who.get("/session").json()["counter"] == counts[name]
        elif step == 1:
            me = who.get("/me").json()
            assert me["user"] == email, (i, name, me)
        else:
            who.get(f"/flash?value={name}-{i}")
            shown = who.get("/flash/show").json()
            assert shown["message"] == f"{name}-{i}", (i, shown)


def queue_jobs_counted(laravel) -> int:
    services = {s["name"]: s for s in laravel.status()["services"]}
    return sum(p.get("counters", {}).get("jobs", 0)
               for p in services["queue"]["processes"])


def test_dispatched_job_is_processed_by_the_askr_queue_worker(laravel):
    before = lh.sqlite_rows(laravel.app, "select count(*) from job_marks")[0][0]
    counted = queue_jobs_counted(laravel)
    assert client(laravel).get("/dispatch").status == 200
    assert client(laravel).get("/dispatch").status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = lh.sqlite_rows(laravel.app, "select count(*) from job_marks")
        if rows[0][0] >= before + 2:
            break
        time.sleep(0.2)
    assert rows[0][0] == before + 2

    # /api/status counts both, though the queue worker printed nothing
    # after the second job (a throttled count used to wait for output).
    deadline = time.monotonic() + 3
    while queue_jobs_counted(laravel) < counted + 2 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue_jobs_counted(laravel) == counted + 2


def test_scheduler_writes_its_mark_each_interval(laravel):
    def marks():
        return lh.sqlite_rows(laravel.app,
                              "select count(*) from schedule_marks")[0][0]

    first = marks()
    deadline = time.monotonic() + 20
    while marks() < first + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marks() >= first + 2


def test_status_lists_queue_and_scheduler(laravel):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        services = {s["name"]: s for s in laravel.status()["services"]}
        sched = services["scheduler"]["processes"][0]
        if sched.get("counters", {}).get("runs"):
            break
        time.sleep(0.5)
    assert set(services) == {"queue", "scheduler"}
    queue = services["queue"]["processes"][0]
    assert queue["state"] == "ready"
    assert "jobs" in queue["counters"]
    assert sched["counters"]["runs"] >= 1
    assert sched["counters"]["last_run"]
    assert laravel.status()["io"] in ("uring", "epoll")


def test_worker_rss_is_flat_over_5000_requests(laravel):
    conn = http.client.HTTPConnection("127.0.0.1", laravel.port, timeout=30)
    paths = ["/text", "/json", "/db", "/blade"]

    def burst(n: int) -> None:
        for i in range(n):
            conn.request("GET", paths[i % len(paths)])
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200

    def rss() -> int:
        time.sleep(0.6)  # stats reach the master at most 4 times a second
        return sum(w["rss"] for w in laravel.status()["workers"])

    burst(200)
    early = rss()
    burst(4800)
    late = rss()
    conn.close()
    growth = late - early
    print(f"worker RSS after 200: {early / 1e6:.1f} MB, "
          f"after 5000: {late / 1e6:.1f} MB")
    assert growth < 4 * 1024 * 1024, growth
