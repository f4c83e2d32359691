"""The admin plane served by a running master (real processes, loopback)."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
from fake_worker import FakeDeployment, MasterProcess
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["fake"])
def deployment(request, tmp_path):
    deployment = FakeDeployment(str(tmp_path / "app"))
    deployment.deploy("v1")
    return deployment


@pytest.fixture
def master(deployment, tmp_path):
    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=2,
                           services=("scheduler=tests.fake_worker:main:1",))
    try:
        master.wait_alive()
        yield master
    finally:
        master.stop()


def test_master_admin_status_describes_workers_and_services(master):
    for _ in range(4):
        assert master.get("/")[0] == 200

    status = master.wait_for(
        lambda s: sum(w["requests"] for w in s["workers"]) == 4 and s,
        what="stats for 4 requests")

    assert status["version"]
    assert status["uptime"] > 0
    assert status["generation"] == 1
    assert status["io"] == "blocking"           # as the workers report it
    assert status["io_configured"] == "auto"
    assert status["workers_alive"] == 2
    assert status["code"].endswith("releases/v1")
    for worker in status["workers"]:
        assert worker["state"] == "ready"
        assert worker["rss"] > 0
        assert worker["request_age"] is None
        assert set(worker) >= {"pid", "requests", "generation", "uptime"}
    [scheduler] = status["services"]
    assert scheduler["name"] == "scheduler"
    assert [p["state"] for p in scheduler["processes"]] == ["ready"]


def test_master_admin_health_and_ready_answer_200_while_serving(master):
    for path in ("/health", "/ready"):
        code, headers, body = master.admin("GET", path)
        assert code == 200
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"status": "ok"}

    code, headers, body = master.admin("HEAD", "/health")
    assert code == 200 and body == b""


def test_master_admin_unknown_path_is_404_json(master):
    code, headers, body = master.admin("GET", "/api/nothing")
    assert code == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == "not found"


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/api/reload", ["POST"]),
    ("POST", "/api/status", ["GET"]),
    ("DELETE", "/metrics", ["GET"]),
])
def test_master_admin_wrong_method_is_405_json(master, method, path, allowed):
    code, _, body = master.admin(method, path)
    assert code == 405
    assert json.loads(body) == {"error": "method not allowed",
                                "allowed": allowed}


def test_master_admin_garbage_request_is_400(master):
    host, _, port = master.admin_address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_master_admin_metrics_parse_and_count(master):
    for path in ("/", "/", "/fail"):
        master.get(path)
    master.wait_for(lambda s: sum(w["requests"] for w in s["workers"]) == 3,
                    what="stats for 3 requests")

    code, headers, body = master.admin("GET", "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value

    assert samples[("askr_workers_alive", ())] == 2
    assert samples[("askr_requests_total", (("status_class", "2xx"),))] == 2
    assert samples[("askr_requests_total", (("status_class", "5xx"),))] == 1
    assert samples[("askr_request_duration_seconds_count", ())] == 3


def test_master_admin_reload_endpoint_counts_outcome(master, deployment):
    deployment.deploy("v2")
    code, _, body = master.admin("POST", "/api/reload")
    assert code == 202
    assert json.loads(body)["generation"] == 2
    master.wait_for(lambda s: s["generation"] == 2 and s["reload"] is None
                    and all(w["generation"] == 2 for w in s["workers"]),
                    what="reload, with the old workers gone")

    text = master.admin("GET", "/metrics")[2].decode()
    assert 'askr_reloads_total{outcome="success"} 1.0' in text
    assert 'askr_worker_restarts_total{reason="reload"}' in text


def test_master_refuses_public_admin_address(deployment, tmp_path):
    with pytest.raises(RuntimeError) as failed:
        MasterProcess(deployment.target, deployment.root,
                      str(tmp_path / "master.log"), workers=1,
                      admin_listen="0.0.0.0:0")
    assert "not loopback" in str(failed.value)


def test_master_notifies_systemd(deployment, tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(10)
    monkeypatch.setitem(os.environ, "NOTIFY_SOCKET", path)

    master = MasterProcess(deployment.target, deployment.root,
                           str(tmp_path / "master.log"), workers=2)
    try:
        ready = receiver.recv(4096).decode()
        master.signal(signal.SIGHUP)
        reloading = receiver.recv(4096).decode()
        reloaded = receiver.recv(4096).decode()
        master.signal(signal.SIGTERM)
        stopping = receiver.recv(4096).decode()
        assert master.wait(10) == 0
    finally:
        master.stop()
        receiver.close()

    assert ready.splitlines() == ["READY=1", "STATUS=2 workers ready"]
    assert reloading.splitlines()[0] == "RELOADING=1"
    assert reloading.splitlines()[1].startswith("MONOTONIC_USEC=")
    assert reloaded.splitlines() == ["READY=1", "STATUS=generation 2"]
    assert stopping == "STOPPING=1"
