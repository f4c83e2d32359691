"""Real clients (curl, h2load, Python's ssl) against TLSPipe and H2Server.

A tiny threaded driver stands in for askr/connection.py: blocking sockets on
127.0.0.1 port 0, one thread per connection, TLSPipe for TLS, negotiate.py to
pick HTTP/2 or HTTP/1.1, H2Server for HTTP/2 and a minimal HTTP/1.1 responder.
It answers every request with 200 and a body naming the target, one request
at a time per connection (like a worker running PHP).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
from test_tls_pipe import CertFiles, make_certs

from askr.http.h2 import ConnectionClosed, H2Server, RequestEnded, RequestReceived
from askr.http.negotiate import Protocol, from_alpn, sniff_preface
from askr.tls import TLSError, TLSPipe, TLSState, build_context

CLIENT_TIMEOUT = 30


def body_for(target: bytes) -> bytes:
    return b"askr test reply for " + target + b"\n"


class Driver:
    """Minimal server: TLS (or cleartext with h2c sniffing) + h2/h1 responder."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.protocols: list[Protocol] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def stop(self) -> None:
        self.stopping.set()
        self.acceptor.join(5)
        self.listener.close()
        for t in self.threads:
            t.join(5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    # -- one connection -----------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        with conn:
            try:
                self._loop(conn)
            except TLSError as exc:
                self.errors.append(exc.reason)
                if exc.to_send:
                    conn.sendall(exc.to_send)
            except OSError:
                pass

    def _loop(self, conn: socket.socket) -> None:
        pipe = TLSPipe(self.context) if self.context else None
        proto: Protocol | None = None
        pending = b""
        h2srv: H2Server | None = None
        h1buf = b""
        targets: dict[int, bytes] = {}

        def send(data: bytes) -> None:
            if data:
                conn.sendall(pipe.wrap(data) if pipe else data)

        while not self.stopping.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if pipe:
                plain, out = pipe.feed(data)
                if out:
                    conn.sendall(out)
                if pipe.state is TLSState.CLOSED:
                    return
            else:
                plain = data
            if not data:
                return

            if proto is None:
                pending += plain
                if pipe:
                    if pipe.state is not TLSState.WRAPPED:
                        continue
                    proto = from_alpn(pipe.alpn)
                else:
                    proto = sniff_preface(pending)
                    if proto is None:
                        continue
                self.protocols.append(proto)
                plain, pending = pending, b""
                if proto is Protocol.HTTP2:
                    h2srv = H2Server()
                    send(h2srv.data_to_send())

            if h2srv is not None:
                if not self._h2(h2srv, plain, send, targets):
                    return
            else:
                h1buf += plain
                h1buf, keep = self._h1(h1buf, send)
                if not keep:
                    if pipe:
                        conn.sendall(pipe.close())
                    return

    def _h2(
        self,
        srv: H2Server,
        data: bytes,
        send: Callable[[bytes], None],
        targets: dict[int, bytes],
    ) -> bool:
        for ev in srv.feed(data):
            if isinstance(ev, RequestReceived):
                targets[ev.stream_id] = ev.target
            elif isinstance(ev, RequestEnded):
                target = targets.pop(ev.stream_id, b"?")
                srv.send(
                    ev.stream_id,
                    200,
                    [b"Content-Type: text/plain", b"Connection: keep-alive"],
                    body_for(target),
                    True,
                )
            elif isinstance(ev, ConnectionClosed):
                send(srv.data_to_send())
                return False
        send(srv.data_to_send())
        return True

    def _h1(self, buf: bytes, send: Callable[[bytes], None]) -> tuple[bytes, bool]:
        while b"\r\n\r\n" in buf:
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            target = lines[0].split(b" ")[1]
            close = any(
                line.lower().startswith(b"connection:") and b"close" in line.lower()
                for line in lines[1:]
            )
            body = body_for(target)
            send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            if close:
                return buf, False
        return buf, True


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_server(certs: CertFiles) -> Iterator[Driver]:
    driver = Driver(build_context(str(certs.cert), str(certs.key)))
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture
def plain_server() -> Iterator[Driver]:
    driver = Driver(None)
    try:
        yield driver
    finally:
        driver.stop()


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=False
    )


needs_curl = pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
needs_h2load = pytest.mark.skipif(
    not shutil.which("h2load"), reason="h2load (nghttp2-client) not installed"
)


# -- curl -------------------------------------------------------------------------


@needs_curl
@pytest.mark.parametrize(
    "flag,version", [("--http2", "2"), ("--http1.1", "1.1")]
)
def test_tls_curl_over_tls(tls_server: Driver, flag: str, version: str) -> None:
    url = f"https://127.0.0.1:{tls_server.port}/hello?x=1"
    res = run(["curl", "-sk", flag, "-w", "\n%{http_version} %{http_code}", url])
    assert res.returncode == 0, res.stderr
    body, _, meta = res.stdout.rpartition("\n")
    assert meta == f"{version} 200"
    assert body == "askr test reply for /hello?x=1\n"


@needs_curl
def test_tls_curl_h2_upload_beyond_the_window(
    tls_server: Driver, tmp_path: Path
) -> None:
    # 3 MiB is far past the 64 KiB initial windows: it only completes if the
    # server acknowledges the body it consumed.
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"u" * (3 * 1024 * 1024))
    url = f"https://127.0.0.1:{tls_server.port}/upload"
    res = run(["curl", "-sk", "--http2", "--data-binary", f"@{upload}",
               "-w", "\n%{http_version} %{http_code} %{size_upload}", url])
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith(f"\n2 200 {3 * 1024 * 1024}")


@needs_curl
def test_tls_curl_verifies_chain(tls_server: Driver, certs: CertFiles) -> None:
    url = f"https://localhost:{tls_server.port}/v"
    res = run(
        ["curl", "-s", "--http2", "--cacert", str(certs.ca),
         "--resolve", f"localhost:{tls_server.port}:127.0.0.1",
         "-w", "%{http_code}", "-o", "/dev/null", url]
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "200"


@needs_curl
def test_tls_curl_plain_http_gets_400(tls_server: Driver) -> None:
    url = f"http://127.0.0.1:{tls_server.port}/"
    res = run(["curl", "-s", "-w", "\n%{http_code}", url])
    assert res.stdout.endswith("\n400")
    assert "plain HTTP" in res.stdout
    assert tls_server.errors == ["plain HTTP on TLS port"]


@needs_curl
def test_tls_curl_tls11_refused(tls_server: Driver) -> None:
    url = f"https://127.0.0.1:{tls_server.port}/"
    res = run(["curl", "-sk", "--tlsv1.1", "--tls-max", "1.1", "--ciphers",
               "DEFAULT:@SECLEVEL=0", url])
    assert res.returncode != 0
    assert not res.stdout


@needs_curl
def test_h2c_curl_prior_knowledge(plain_server: Driver) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/h2c"
    res = run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", url])
    assert res.returncode == 0, res.stderr
    assert res.stdout == "askr test reply for /h2c\n\n2"
    assert plain_server.protocols == [Protocol.HTTP2]


# -- h2load -----------------------------------------------------------------------


def _h2load_ok(res: subprocess.CompletedProcess[str], n: int) -> None:
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"requests: {n} total, {n} started, {n} done, {n} succeeded" in res.stdout
    assert f"status codes: {n} 2xx" in res.stdout


@needs_h2load
def test_tls_h2load_100_streams_one_connection(tls_server: Driver) -> None:
    url = f"https://127.0.0.1:{tls_server.port}/load"
    res = run(["h2load", "-n", "200", "-c", "1", "-m", "100", url])
    _h2load_ok(res, 200)
    assert "Application protocol: h2" in res.stdout
    assert tls_server.protocols == [Protocol.HTTP2]


@needs_h2load
def test_h2c_h2load_prior_knowledge(plain_server: Driver) -> None:
    url = f"http://127.0.0.1:{plain_server.port}/load"
    res = run(["h2load", "-n", "200", "-c", "1", "-m", "100", url])
    _h2load_ok(res, 200)
    assert plain_server.protocols == [Protocol.HTTP2]


# -- Python's ssl client ------------------------------------------------------------


def _client_ctx(certs: CertFiles, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.set_alpn_protocols(alpn)
    return ctx


def test_tls_python_client_alpn_h2(tls_server: Driver, certs: CertFiles) -> None:
    ctx = _client_ctx(certs, ["h2", "http/1.1"])
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "h2"
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.initiate_connection()
        conn.send_headers(
            1,
            [(b":method", b"GET"), (b":path", b"/py"), (b":scheme", b"https"),
             (b":authority", b"localhost")],
            end_stream=True,
        )
        tls.sendall(conn.data_to_send())

        status, body, ended = None, b"", False
        for _ in range(50):
            data = tls.recv(65536)
            assert data, "server closed before the response ended"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, 1)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
            tls.sendall(conn.data_to_send())
            if ended:
                break
        assert (status, body, ended) == (b"200", body_for(b"/py"), True)


def test_tls_python_client_alpn_http11(tls_server: Driver, certs: CertFiles) -> None:
    ctx = _client_ctx(certs, ["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        tls.sendall(
            b"GET /one HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        for _ in range(50):
            chunk = tls.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(body_for(b"/one"))


def test_tls_python_client_resumes_session(tls_server: Driver, certs: CertFiles):
    ctx = _client_ctx(certs, ["http/1.1"])
    request = b"GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    session = None
    reused = []
    for _ in range(2):
        raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(request)
            while tls.recv(65536):
                pass
            reused.append(tls.session_reused)
            session = tls.session
    assert reused == [False, True]
