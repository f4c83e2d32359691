"""The hot paths, one case each, plus a calibration case.

Every case is reported by bench/micro/gate.py as a ratio to
``test_calibration`` measured in the same run, so that a slower or busier
machine moves all cases together and only a real regression moves one.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile

import pytest

from askr.http import h1

REQUEST = (
    b"GET /users/42?tab=posts HTTP/1.1\r\n"
    b"Host: example.test\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench\r\n"
    b"Accept: text/html,application/xhtml+xml\r\n"
    b"Accept-Language: en-GB,en;q=0.9\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Cookie: laravel_session=abcdef0123456789; XSRF-TOKEN=zzz\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)
RESPONSE_HEADERS = [b"Content-Type: text/html; charset=UTF-8",
                    b"Cache-Control: no-cache, private",
                    b"Set-Cookie: laravel_session=abc; path=/; httponly"]
BODY = b"<html>" + b"x" * 2000 + b"</html>"


def test_calibration(benchmark):
    """Plain CPython work of about the same size as the cases below."""
    data = {f"k{i}": list(range(i % 7)) for i in range(40)}

    def work():
        return json.loads(json.dumps(data))

    benchmark(work)


def test_h1_parse_and_serialise(benchmark):
    conn = h1.H1Connection()

    def one():
        for ev in conn.receive_data(REQUEST):
            pass
        out = conn.simple_response(200, RESPONSE_HEADERS, BODY)
        conn.next_events()
        return out

    assert one().startswith(b"HTTP/1.1 200")
    benchmark(one)


@pytest.mark.parametrize("io", ["uring", "epoll"])
def test_loop_round_trip(benchmark, io):
    from askr.uring import EV_DATA, EV_SENT, open_backend

    try:
        backend = open_backend(io)
    except OSError as exc:
        pytest.skip(f"{io} unusable here: {exc}")
    client, server = socket.socketpair()
    server.setblocking(False)
    backend.watch(server.fileno())

    def one():
        client.send(b"ping")
        got = sent = False
        while not (got and sent):
            for kind, fd, value in backend.wait(1.0):
                if kind == EV_DATA:
                    got = True
                    backend.send(fd, b"pong")
                elif kind == EV_SENT:
                    sent = True
        return client.recv(16)

    try:
        assert one() == b"pong"
        benchmark(one)
    finally:
        backend.close(server.fileno())
        backend.shutdown()
        client.close()


@pytest.fixture(scope="module")
def bridge():
    from askr.php import bridge

    bridge.startup("zend_extension=opcache.so\nopcache.enable=1\n"
                   "opcache.enable_cli=1\n", lambda level, msg: None)
    return bridge


class _Job:
    body = b""
    body_fd = -1

    def __init__(self, env, feed=None):
        self.env = env
        self.feed = feed
        self.status = 0

    def send(self, status, headers, data, last):
        self.status = status
        return True

    def next_job(self):
        return self.feed() if self.feed else None


def _env(root, script):
    from askr.php import environ

    return environ.build(
        method="GET", target=b"/" + script.encode() + b"?a=1",
        protocol="HTTP/1.1", headers=[(b"host", b"bench.test")],
        client=("127.0.0.1", 40000), server=("127.0.0.1", 8080),
        server_name="localhost", https=False, document_root=root,
        script_name="/" + script, script_filename=os.path.join(root, script),
        path_info="")


def test_bridge_classic_hello(benchmark, bridge):
    root = tempfile.mkdtemp()
    with open(os.path.join(root, "hello.php"), "w") as f:
        f.write("<?php echo 'Hello, world!';")
    env = _env(root, "hello.php")

    def one():
        job = _Job(env)
        bridge.run_script(job)
        return job.status

    assert one() == 200
    benchmark(one)


def test_bridge_worker_100_requests(benchmark, bridge):
    """One worker-mode script serving 100 requests (inverted control: PHP
    asks for each request, so the case is a batch)."""
    root = tempfile.mkdtemp()
    with open(os.path.join(root, "w.php"), "w") as f:
        f.write("<?php while (askr_handle_request(function () {"
                " echo 'Hello, world!'; })) {}")
    env = _env(root, "w.php")

    def batch():
        left = [100]

        def feed():
            if left[0] == 0:
                return None
            left[0] -= 1
            return _Job(env, feed)

        boot = _Job(env, feed)
        bridge.run_worker(boot)
        return left[0]

    assert batch() == 0
    benchmark(batch)
