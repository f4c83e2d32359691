"""A Host (or :authority) that cannot be a host gets 400 before PHP sees
it as HTTP_HOST / SERVER_NAME; real host names, IP literals and ports
pass (askr/http/host.py)."""

from __future__ import annotations

import pytest
from test_h2_protocol import Pair, collect

from askr.http.h1 import H1Connection, ProtocolFailed, RequestReceived
from askr.http.h2 import RequestReceived as H2RequestReceived

GOOD = [b"example.com", b"example.com:8080", b"127.0.0.1:80", b"[::1]:8080",
        b"xn--bcher-kva.example", b"my_host.local", b""]
BAD = [b"../../etc", b"a..b", b"a b", b'a"<>', b"x/y", b"x\\y", b"a@b",
       b"[::1", b"host:80x"]


@pytest.mark.parametrize("host", GOOD)
def test_h1_accepts_real_hosts(host):
    conn = H1Connection()
    events = conn.receive_data(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert [type(e) for e in events
            if isinstance(e, (RequestReceived, ProtocolFailed))] == [
        RequestReceived]


@pytest.mark.parametrize("host", BAD)
def test_h1_refuses_a_host_that_is_no_host(host):
    conn = H1Connection()
    events = conn.receive_data(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
                               b"GET /second HTTP/1.1\r\nHost: ok\r\n\r\n")
    assert [(type(e), e.status) for e in events
            if isinstance(e, ProtocolFailed)] == [(ProtocolFailed, 400)]
    assert not [e for e in events if isinstance(e, RequestReceived)]


def h2_request(authority: bytes) -> tuple[list, dict]:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, [
        (b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"),
        (b":authority", authority)], end_stream=True)
    events = pair.to_server()
    pair.to_client()
    return events, collect(pair.client_events).get(sid, {})


@pytest.mark.parametrize("host", [h for h in GOOD if h])
def test_h2_accepts_real_authorities(host):
    events, _ = h2_request(host)
    assert [e.headers[0] for e in events
            if isinstance(e, H2RequestReceived)] == [(b"host", host)]


@pytest.mark.parametrize("host", BAD)
def test_h2_refuses_an_authority_that_is_no_host(host):
    events, response = h2_request(host)
    assert not [e for e in events if isinstance(e, H2RequestReceived)]
    assert dict(response["headers"])[b":status"] == b"400"
