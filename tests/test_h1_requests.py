"""Request parsing of the h1 state machine: heads, bodies, keep-alive,
pipelining order, 100-continue."""

from askr.http.h1 import (
    BodyReceived,
    ConnectionClosed,
    H1Connection,
    ProtocolFailed,
    RequestEnded,
    RequestReceived,
)


def body_of(events):
    return b"".join(e.data for e in events if isinstance(e, BodyReceived))


def kinds(events):
    return [type(e).__name__ for e in events]


def test_simple_get_gives_head_and_end():
    conn = H1Connection()
    evs = conn.receive_data(
        b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.org\r\n"
        b"User-Agent: T\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n")

    assert kinds(evs) == ["RequestReceived", "RequestEnded"]
    head = evs[0]
    assert head.method == "GET"
    assert head.target == b"/a/b?x=1&y=%20"
    assert head.version == "1.1"
    assert head.headers == [(b"host", b"example.org"), (b"user-agent", b"T"),
                            (b"x-dup", b"1"), (b"x-dup", b"2")]
    assert head.keep_alive is True
    assert head.content_length is None and head.chunked is False
    assert head.expects_continue is False


def test_head_split_byte_by_byte():
    conn = H1Connection()
    raw = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    evs = []
    for i in range(len(raw)):
        evs += conn.receive_data(raw[i:i + 1])

    assert kinds(evs)[0] == "RequestReceived"
    assert evs[0].content_length == 5
    assert body_of(evs) == b"hello"
    assert isinstance(evs[-1], RequestEnded)


def test_chunked_body_is_dechunked():
    conn = H1Connection()
    evs = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")

    assert evs[0].chunked is True and evs[0].content_length is None
    assert body_of(evs) == b"hello world"
    assert isinstance(evs[-1], RequestEnded)


def test_http10_without_keep_alive_closes():
    conn = H1Connection()
    evs = conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")

    assert evs[0].version == "1.0" and evs[0].keep_alive is False
    out = conn.simple_response(200, [], b"x")
    assert b"\r\nConnection: close\r\n" in out
    assert conn.closing


def test_http10_keep_alive_is_honoured():
    conn = H1Connection()
    evs = conn.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")

    assert evs[0].keep_alive is True
    out = conn.simple_response(200, [], b"x")
    assert b"\r\nConnection: keep-alive\r\n" in out
    assert not conn.closing
    assert conn.timer_kind == "idle"


def test_connection_close_request_closes_after_response():
    conn = H1Connection()
    evs = conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")

    assert evs[0].keep_alive is False
    out = conn.simple_response(204, [])
    assert b"Connection: close" in out and conn.closing


def test_pipelined_requests_are_released_in_order():
    conn = H1Connection()
    evs = conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")

    assert [e.target for e in evs if isinstance(e, RequestReceived)] == [b"/1"]
    assert conn.pause_reading

    conn.simple_response(200, [], b"one")
    evs = conn.next_events()
    assert evs[0].target == b"/2" and body_of(evs) == b"abc"
    assert conn.pause_reading

    conn.simple_response(200, [], b"two")
    evs = conn.next_events()
    assert kinds(evs) == ["RequestReceived", "RequestEnded"]
    assert evs[0].target == b"/3"
    assert not conn.pause_reading

    conn.simple_response(200, [], b"three")
    assert conn.next_events() == []


def test_next_request_waits_until_response_ends():
    conn = H1Connection()
    conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.start_response(200, [])

    assert conn.receive_data(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n") == []
    conn.send_body(b"abc")
    assert conn.next_events() == []

    conn.end_response()
    assert [e.target for e in conn.next_events()
            if isinstance(e, RequestReceived)] == [b"/2"]


def test_expect_continue_offered_once():
    conn = H1Connection()
    evs = conn.receive_data(
        b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\n")

    assert evs[0].expects_continue is True
    assert conn.continue_bytes() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.continue_bytes() == b""
    evs = conn.receive_data(b"data")
    assert body_of(evs) == b"data" and isinstance(evs[-1], RequestEnded)


def test_expect_continue_not_offered_after_body():
    conn = H1Connection()
    conn.receive_data(
        b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\ndata")

    assert conn.continue_bytes() == b""


def test_expect_continue_over_limit_is_413_before_body():
    conn = H1Connection(max_body_size=10)
    evs = conn.receive_data(
        b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n"
        b"Expect: 100-continue\r\n\r\n")

    assert kinds(evs) == ["ProtocolFailed"]
    assert evs[0].status == 413
    assert evs[0].response.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in evs[0].response


def test_unknown_expectation_is_417():
    conn = H1Connection()
    evs = conn.receive_data(
        b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n")

    assert [e.status for e in evs] == [417]


def test_answering_before_body_read_closes():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")

    out = conn.simple_response(403, [], b"no")
    assert b"Connection: close" in out
    assert conn.closing
    assert conn.receive_data(b"cdefghij") == []


def test_eof_between_requests_reports_closed():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.simple_response(200, [], b"")

    assert kinds(conn.receive_eof()) == ["ConnectionClosed"]


def test_eof_after_pipelined_request_serves_it_first():
    conn = H1Connection()
    conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.receive_eof() == []

    conn.simple_response(200, [], b"")
    evs = conn.next_events()
    assert kinds(evs) == ["RequestReceived", "RequestEnded"]
    conn.simple_response(200, [], b"")
    assert isinstance(conn.next_events()[0], ConnectionClosed)


def test_eof_mid_body_reports_closed_now():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")

    evs = conn.receive_eof()
    assert kinds(evs) == ["ConnectionClosed"]


def test_upgrade_request_served_without_upgrade_then_closed():
    conn = H1Connection()
    evs = conn.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n")

    assert [e.target for e in evs if isinstance(e, RequestReceived)] == [b"/ws"]
    assert evs[0].keep_alive is False
    out = conn.simple_response(404, [], b"")
    assert b"Connection: close" in out
    assert conn.next_events() == []


def test_upgrade_request_with_body_is_refused():
    conn = H1Connection()
    evs = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n"
        b"Content-Length: 31\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n")

    assert kinds(evs) == ["ProtocolFailed"] and evs[0].status == 400


def test_failure_is_not_a_request():
    conn = H1Connection()
    evs = conn.receive_data(b"BREW /pot HTTP/1.1\r\n\r\n")
    assert len(evs) == 1 and isinstance(evs[0], ProtocolFailed)


def test_failure_mid_body_after_response_started_has_no_answer():
    conn = H1Connection(max_body_size=10)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.start_response(200, [])

    evs = conn.receive_data(b"20\r\n" + b"x" * 32 + b"\r\n")
    failed = [e for e in evs if isinstance(e, ProtocolFailed)]
    assert [e.status for e in failed] == [413]
    assert failed[0].response == b""
