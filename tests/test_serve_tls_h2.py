"""TLS termination, ALPN and HTTP/2 through a real askr master, with real
clients: curl, h2load (nghttp2-client) and Python's ssl."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from askr_server import AskrServer, tls_section

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-tls")
    root = work / "docroot"
    shutil.copytree(HERE / "docroot_http", root)
    srv = AskrServer(work, {
        "server": {"root": str(root), "workers": 2},
        "tls": tls_section(work),
    })
    srv.start()
    yield srv
    srv.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-k", "--max-time", "20", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_curl_http2_over_tls(tls_server):
    url = f"https://127.0.0.1:{tls_server.tls_port}/info.php/p?q=1"
    out = curl("--http2", "-w", "\n%{http_version}", url)
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "2", out.stderr
    info = json.loads(body)
    assert info["https"] == "on"
    assert info["protocol"] == "HTTP/2.0"
    assert info["path_info"] == "/p"
    assert info["host"] == f"127.0.0.1:{tls_server.tls_port}"


def test_curl_http11_over_tls(tls_server):
    url = f"https://127.0.0.1:{tls_server.tls_port}/info.php"
    out = curl("--http1.1", "-w", "\n%{http_version}", url)
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "1.1", out.stderr
    assert json.loads(body)["protocol"] == "HTTP/1.1"


def test_static_file_over_tls_both_protocols(tls_server):
    for flag in ("--http1.1", "--http2"):
        out = curl(flag, f"https://127.0.0.1:{tls_server.tls_port}/file.txt")
        assert out.stdout == "plain text file\n", (flag, out.stderr)


def test_python_ssl_client_negotiates_alpn(tls_server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for offer, expect in ((["h2", "http/1.1"], "h2"),
                          (["http/1.1"], "http/1.1")):
        ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", tls_server.tls_port),
                                      timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == expect
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_1_1_client_is_refused(tls_server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", tls_server.tls_port),
                                  timeout=10) as raw, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname="localhost")
    # the worker is still fine
    assert curl(f"https://127.0.0.1:{tls_server.tls_port}/file.txt").stdout


def test_plain_http_on_the_tls_port_gets_one_answer(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.tls_port),
                                  timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400")


def test_stalled_handshake_costs_one_connection(tls_server):
    stalled = socket.create_connection(("127.0.0.1", tls_server.tls_port))
    stalled.sendall(b"\x16\x03\x01\x00")  # a record header, then nothing
    try:
        out = curl(f"https://127.0.0.1:{tls_server.tls_port}/file.txt")
        assert out.stdout == "plain text file\n"
    finally:
        stalled.close()


def test_h2load_100_concurrent_streams_on_one_connection(tls_server):
    url = f"https://127.0.0.1:{tls_server.tls_port}/info.php"
    out = subprocess.run(["h2load", "-n", "300", "-c", "1", "-m", "100", url],
                         capture_output=True, text=True, timeout=120,
                         check=False)
    assert "300 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert "300 2xx" in out.stdout, out.stdout


def test_h2c_prior_knowledge_on_the_plain_port(tls_server):
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_version}",
               f"http://127.0.0.1:{tls_server.port}/info.php")
    body, version = out.stdout.rsplit("\n", 1)
    assert version == "2", out.stderr
    assert json.loads(body)["https"] is None


def test_rapid_reset_flood_is_cut_off(tls_server):
    import h2.config
    import h2.connection

    config = h2.config.H2Configuration(client_side=True)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", tls_server.port),
                                  timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        headers = [(":method", "GET"), (":path", "/file.txt"),
                   (":scheme", "http"), (":authority", "t")]
        for i in range(2000):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, headers, end_stream=True)
            conn.reset_stream(sid)
        try:
            sock.sendall(conn.data_to_send())
        except (BrokenPipeError, ConnectionResetError):
            pass
        events = []
        try:
            while data := sock.recv(65536):
                events += conn.receive_data(data)
        except (ConnectionResetError, h2.exceptions.ProtocolError):
            pass
    goaways = [e for e in events if type(e).__name__ == "ConnectionTerminated"]
    assert goaways and goaways[0].error_code == 0xB  # ENHANCE_YOUR_CALM
