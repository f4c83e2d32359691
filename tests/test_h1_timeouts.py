"""Which timer applies when, and what firing it produces."""

from askr.http.h1 import H1Connection


def test_idle_timer_closes_silently():
    conn = H1Connection()
    assert conn.timer_kind == "idle"

    assert conn.timeout_fired() == b""
    assert conn.closing and conn.timer_kind is None
    assert conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n") == []


def test_head_timer_gives_408():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHo")
    assert conn.timer_kind == "head"

    out = conn.timeout_fired()
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in out and conn.closing


def test_body_timer_gives_408():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc")
    assert conn.timer_kind == "body"

    assert conn.timeout_fired().startswith(b"HTTP/1.1 408 ")


def test_no_timer_while_we_work_or_respond():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.timer_kind is None

    conn.start_response(200, [])
    assert conn.timer_kind is None
    conn.end_response()
    assert conn.timer_kind == "idle"


def test_no_timer_while_pipelined_requests_wait():
    conn = H1Connection()
    conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHo")
    conn.simple_response(200, [], b"")
    assert conn.timer_kind == "head"  # /2 is still partial

    conn.receive_data(b"st: h\r\n\r\n")
    conn.next_events()
    assert conn.timer_kind is None


def test_idle_after_crlf_between_requests():
    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.simple_response(200, [], b"")
    conn.receive_data(b"\r\n")
    assert conn.timer_kind == "idle"


def test_body_timer_stops_once_response_started():
    conn = H1Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc")
    conn.start_response(413, [])
    assert conn.timer_kind is None


def test_close_frees_parser_without_gc():
    import gc
    import weakref

    conn = H1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHo")
    ref = weakref.ref(conn)
    gc.disable()
    try:
        conn.close()
        del conn
        assert ref() is None
    finally:
        gc.enable()
