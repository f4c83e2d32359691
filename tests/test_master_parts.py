"""The master's small parts in-process: control channel, metrics
bookkeeping, quotas, addresses, admin routing, sd_notify."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from askr import admin, control, sdnotify
from askr.metrics import Metrics
from askr.supervisor import (
    Event,
    Pool,
    State,
    TransitionError,
    bind_listener,
    describe_exit,
    next_state,
    parse_address,
)


def test_control_messages_arrive_whole_and_in_order():
    master, worker = control.channel()
    try:
        assert control.ready(worker)
        assert control.stats(worker, requests=3, errors5xx=1, rss=1000,
                             busy_since=None, jobs=7)
        assert control.exiting(worker, "max_requests")

        messages, eof = control.receive(master)
    finally:
        master.close()
        worker.close()

    assert not eof
    assert [m["ev"] for m in messages] == ["ready", "stats", "exiting"]
    assert messages[0]["pid"] == os.getpid()
    assert messages[1] == {"ev": "stats", "requests": 3, "errors5xx": 1,
                           "rss": 1000, "busy_since": None, "jobs": 7}
    assert messages[2]["reason"] == "max_requests"


def test_control_skips_malformed_packets_and_reports_eof():
    master, worker = control.channel()
    worker.send(b"{not json")
    worker.send(b"[1, 2]")
    control.ready(worker)
    worker.close()

    messages, eof = control.receive(master)
    master.close()

    assert [m["ev"] for m in messages] == ["ready"]
    assert eof


def test_control_send_to_vanished_master_returns_false():
    master, worker = control.channel()
    master.close()
    assert control.ready(worker) is False
    worker.close()


def test_control_spec_survives_the_environment_round_trip():
    master, worker = control.channel()
    listener = bind_listener("127.0.0.1:0", 16)
    try:
        spec = control.WorkerSpec(pool="web", index=2, generation=5,
                                  control=worker, listeners=[listener],
                                  code="/srv/app/releases/v5",
                                  max_requests=120, request_timeout=30.0)
        env = control.spec_to_env(spec)
        back = control.spec_from_env(env)
        try:
            assert (back.pool, back.index, back.generation, back.code,
                    back.max_requests, back.request_timeout) == (
                "web", 2, 5, "/srv/app/releases/v5", 120, 30.0)
            assert back.listeners[0].fileno() == listener.fileno()
            assert back.control.fileno() == worker.fileno()
        finally:
            for sock in (back.control, *back.listeners):
                sock.detach()
    finally:
        listener.close()
        master.close()
        worker.close()


def samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = \
                sample.value
    return out


def test_metrics_add_only_increases_of_cumulative_worker_counters():
    metrics = Metrics(lambda: 4)
    metrics.observe_stats(10, {"status": {"2xx": 5, "5xx": 1},
                               "durations": [0.01, 0.2]})
    metrics.observe_stats(10, {"status": {"2xx": 8, "5xx": 1}})
    # A recycled worker starts again from zero under a new pid.
    metrics.forget(10)
    metrics.observe_stats(11, {"status": {"2xx": 2}})
    metrics.observe_stats(12, {"requests": 4, "errors5xx": 1})

    got = samples(metrics)
    assert got["askr_requests_total", (("status_class", "2xx"),)] == 10
    assert got["askr_requests_total", (("status_class", "5xx"),)] == 2
    assert got["askr_requests_total", (("status_class", "other"),)] == 3
    assert got["askr_request_duration_seconds_count", ()] == 2
    assert got["askr_workers_alive", ()] == 4


def test_metrics_restarts_and_reloads_are_labelled():
    metrics = Metrics(lambda: 0)
    metrics.restart("max_requests")
    metrics.restart("max_requests")
    metrics.reload("aborted")

    got = samples(metrics)
    assert got["askr_worker_restarts_total", (("reason", "max_requests"),)] == 2
    assert got["askr_reloads_total", (("outcome", "aborted"),)] == 1


def test_pool_quotas_are_staggered_by_index():
    pool = Pool("web", print, 4, max_requests=1000, max_requests_jitter=200)
    assert [pool.quota(i) for i in range(4)] == [1000, 1050, 1100, 1150]
    assert Pool("web", print, 4).quota(3) == 0


def test_pool_successor_quota_is_far_from_what_siblings_have_left():
    pool = Pool("web", print, 3, max_requests=100, max_requests_jitter=50)
    # Siblings will recycle after 100 and 104 more requests: pick 150.
    assert pool.quota(0, remaining=[100, 104]) == 150
    assert pool.quota(0, remaining=[150]) == 100


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("[::1]:0", ("::1", 0)),
    (":9000", ("0.0.0.0", 9000)),
])
def test_parse_address_forms(text, expected):
    assert parse_address(text) == expected


def test_bind_listener_is_nonblocking_with_backlog_and_v6only():
    v4 = bind_listener("127.0.0.1:0", 1024)
    v6 = bind_listener("[::1]:0", 1024)
    try:
        assert not v4.getblocking()
        assert v4.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert v6.family == socket.AF_INET6
        assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    finally:
        v4.close()
        v6.close()


def test_accepted_connections_have_nagle_off():
    """TCP_NODELAY on the listener is inherited by every accepted socket,
    whichever backend accepts it (no 40 ms delayed-ACK stall between a
    response head and its body)."""
    for address in ("127.0.0.1:0", "[::1]:0"):
        listener = bind_listener(address, 16)
        try:
            client = socket.create_connection(listener.getsockname()[:2], 5)
            listener.setblocking(True)
            accepted, _ = listener.accept()
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            accepted.close()
            client.close()
        finally:
            listener.close()


def test_describe_exit_names_signals_and_codes():
    killed = subprocess.Popen([sys.executable, "-c",
                               "import time; time.sleep(30)"])
    killed.send_signal(signal.SIGKILL)
    _, status = os.waitpid(killed.pid, 0)
    assert describe_exit(status) == (None, "SIGKILL")

    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    _, status = os.waitpid(exited.pid, 0)
    assert describe_exit(status) == (5, None)


@pytest.mark.parametrize("host, public", [
    ("127.0.0.1", False), ("::1", False), ("localhost", False),
    ("0.0.0.0", True), ("::", True), ("10.0.0.1", True), ("", True),
    ("admin.example", True),
])
def test_admin_public_address_detection(host, public):
    assert admin.is_public(host) is public


def test_admin_bind_refuses_public_address_unless_allowed():
    with pytest.raises(ValueError, match="allow_public"):
        admin.bind("0.0.0.0", 0)
    sock = admin.bind("0.0.0.0", 0, allow_public=True)
    sock.close()


class StubPlane:
    def __init__(self) -> None:
        self.reloads: list[bool | None] = []

    def status(self):
        return {"ok": True}

    def request_reload(self, canary):
        self.reloads.append(canary)
        return {"accepted": True}

    def healthy(self):
        return False

    def ready(self):
        return True

    def metrics_text(self):
        return b"m 1\n", "text/plain"


def test_admin_route_table():
    plane = StubPlane()
    assert admin.route(plane, "GET", "/health", "")[0] == 503
    assert admin.route(plane, "GET", "/ready", "")[0] == 200
    assert admin.route(plane, "HEAD", "/metrics", "")[2] == b"m 1\n"
    assert admin.route(plane, "POST", "/api/reload", "canary=1")[0] == 202
    assert admin.route(plane, "POST", "/api/reload", "canary=0")[0] == 202
    assert admin.route(plane, "POST", "/api/reload", "")[0] == 202
    assert plane.reloads == [True, False, None]
    assert admin.route(plane, "PUT", "/health", "")[0] == 405
    assert admin.route(plane, "GET", "/", "")[0] == 404


def test_sdnotify_without_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_sdnotify_abstract_socket(monkeypatch):
    name = f"askr-test-{os.getpid()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert sdnotify.notify("RELOADING=1", "STATUS=rolling")
        assert receiver.recv(1024) == b"RELOADING=1\nSTATUS=rolling"
    finally:
        receiver.close()


@given(st.sampled_from(list(State)), st.sampled_from(list(Event)))
def test_worker_transitions_cover_every_pair(state, event):
    if (state, event) == (State.READY, Event.READY_RECEIVED):
        # A second "ready" from a serving worker is a worker bug.
        with pytest.raises(TransitionError):
            next_state(state, event)
        return
    after = next_state(state, event)
    if state is State.DRAINING or event is not Event.READY_RECEIVED:
        assert after is State.DRAINING       # draining is one-way
    else:
        assert after is State.READY

