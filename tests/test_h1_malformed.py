"""Malformed and oversized requests: the right status, then nothing more is
parsed (no smuggled second request ever comes out)."""

import pytest

from askr.http.h1 import H1Connection, ProtocolFailed, RequestReceived

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


def run(raw, **limits):
    """Feed raw in one piece, answer every released request, return all
    events seen."""
    conn = H1Connection(**limits)
    seen = conn.receive_data(raw)
    evs = list(seen)
    while any(isinstance(e, RequestReceived) for e in evs) and not conn.closing:
        conn.simple_response(200, [], b"ok")
        evs = conn.next_events()
        seen += evs
    return conn, seen


def failures(events):
    return [e.status for e in events if isinstance(e, ProtocolFailed)]


def targets(events):
    return [e.target for e in events if isinstance(e, RequestReceived)]


BAD_400 = {
    "cl_te_both": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_cl_both": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "cl_conflict": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                   b"Content-Length: 4\r\n\r\nabcd",
    "cl_duplicate": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                    b"Content-Length: 3\r\n\r\nabc",
    "cl_list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
    "cl_sign": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
    "cl_negative": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    "te_duplicate": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_in_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    "nul_in_target": b"GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n",
    "ctl_in_value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
    "cr_in_value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "empty_header_name": b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
    "bad_header_name": b"GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n",
    "bare_lf_head": b"GET / HTTP/1.1\nHost: h\n\n",
    "missing_host_11": b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "two_hosts_10": b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    "lowercase_method": b"get / HTTP/1.1\r\nHost: h\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "space_in_target": b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    "raw_utf8_target": b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


BAD_CHUNKS = {
    "chunk_size_hex_bad": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                          b"\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                           b"\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "chunk_size_space": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                        b"\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
    "chunk_bare_lf": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                     b"\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "chunk_data_overrun": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                          b"\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_400))
def test_malformed_is_400_and_close(name):
    conn, evs = run(BAD_400[name] + SMUGGLED)

    assert failures(evs) == [400], evs
    assert targets(evs) == []
    failed = next(e for e in evs if isinstance(e, ProtocolFailed))
    assert failed.response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in failed.response
    assert conn.receive_data(SMUGGLED) == []


@pytest.mark.parametrize("name", sorted(BAD_CHUNKS))
def test_bad_chunk_fails_the_request_mid_body(name):
    conn = H1Connection()
    evs = conn.receive_data(BAD_CHUNKS[name] + SMUGGLED)

    # The head was valid, so it is out; the body then fails, in order, and
    # nothing after it is parsed.
    assert targets(evs) == [b"/"]
    assert failures(evs) == [400]
    assert isinstance(evs[-1], ProtocolFailed)
    assert conn.receive_data(SMUGGLED) == []


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 505),
    ((b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"0\r\n\r\n"), 501),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 405),
])
def test_unsupported_versions_and_codings(raw, status):
    _conn, evs = run(raw + SMUGGLED)

    assert failures(evs) == [status]
    assert targets(evs) == []


def test_smuggling_cl_te_in_pipeline_never_emits_second_request():
    # Request 1 is fine.  Request 2 says both CL and TE: a front end that
    # trusts CL would see the "GET /smuggled" as body; one that trusts TE
    # would see it as a third request.  We must answer 1, then fail.
    raw = (b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
           b"POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    conn, evs = run(raw)

    assert targets(evs) == [b"/first"]
    assert failures(evs) == [400]
    assert b"/smuggled" not in repr(evs).encode()
    assert conn.closing or conn.receive_data(SMUGGLED) == []


def test_smuggling_te_cl_split_over_reads():
    conn = H1Connection()
    evs = conn.receive_data(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.simple_response(200, [], b"")
    evs = conn.next_events()
    evs += conn.receive_data(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n")
    evs += conn.receive_data(b"Content-Length: 3\r\n\r\n0\r\n\r\n" + SMUGGLED)

    assert targets(evs) == [] and failures(evs) == [400]
    assert conn.receive_data(SMUGGLED) == []


def test_data_after_connection_close_is_not_parsed():
    conn, evs = run(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    + SMUGGLED)

    assert targets(evs) == [b"/a"]
    assert conn.closing


def test_long_target_is_414():
    _conn, evs = run(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert failures(evs) == [414]


def test_long_target_trickled_is_414():
    conn = H1Connection(max_request_line=100)
    evs = conn.receive_data(b"GET /")
    for _ in range(30):
        evs += conn.receive_data(b"aaaaa")
    assert failures(evs) == [414]


def test_large_header_is_431():
    _conn, evs = run(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 100000 + b"\r\n\r\n")
    assert failures(evs) == [431]


def test_large_header_trickled_is_431_with_bounded_input():
    conn = H1Connection(max_header_bytes=1000)
    evs = conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nX: ")
    fed = 0
    while not evs and fed < 100_000:
        evs = conn.receive_data(b"v" * 10)
        fed += 10
    assert failures(evs) == [431]
    assert fed < 1100


def test_many_small_headers_trickled_is_431():
    conn = H1Connection(max_header_bytes=100_000, max_headers=50)
    evs = conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n")
    for i in range(60):
        evs += conn.receive_data(b"X-%d: v\r\n" % i)
    assert failures(evs) == [431]


def test_too_many_headers_is_431():
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    _conn, evs = run(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n")
    assert failures(evs) == [431]


def test_headers_at_limits_are_fine():
    many = b"".join(b"X-%d: v\r\n" % i for i in range(99))
    _conn, evs = run(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n")
    assert failures(evs) == [] and len(targets(evs)) == 1


def test_pipelined_heads_in_big_buffer_are_not_431():
    # Many requests in one buffer, the last one cut in its head: the
    # partial head must not be charged with the whole buffer.
    one = b"GET /x HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
    conn = H1Connection(max_header_bytes=1000)
    evs = conn.receive_data(one * 20 + one[:100])
    assert failures(evs) == []
    n = 0
    while evs:
        n += sum(isinstance(e, RequestReceived) for e in evs)
        conn.simple_response(200, [], b"")
        evs = conn.next_events()
        if not evs and n == 20:
            evs = conn.receive_data(one[100:])
    assert n == 21


def test_content_length_over_limit_is_413_before_body():
    _conn, evs = run(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n",
                    max_body_size=100)
    assert failures(evs) == [413]
    assert targets(evs) == []


def test_chunked_body_over_limit_is_413():
    conn = H1Connection(max_body_size=100)
    evs = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert len(targets(evs)) == 1
    for _ in range(5):
        evs += conn.receive_data(b"20\r\n" + b"x" * 32 + b"\r\n")
    assert failures(evs) == [413]
    assert conn.receive_data(b"0\r\n\r\n" + SMUGGLED) == []


def test_body_at_limit_is_fine():
    _conn, evs = run(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"
                    + b"x" * 100, max_body_size=100)
    assert failures(evs) == [] and targets(evs) == [b"/"]


def test_failure_of_pipelined_request_waits_for_current_response():
    conn = H1Connection()
    evs = conn.receive_data(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\n\r\n")
    assert targets(evs) == [b"/ok"] and failures(evs) == []

    conn.simple_response(200, [], b"fine")
    assert failures(conn.next_events()) == [400]


@pytest.mark.parametrize("piece", [1024, 16384, 65536])
def test_oversized_header_split_across_receive_buffers_gets_431(piece):
    data = (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 100000
            + b"\r\n\r\n")
    conn = H1Connection()
    events = []
    for i in range(0, len(data), piece):
        events += conn.receive_data(data[i:i + piece])
    assert [type(e).__name__ for e in events] == ["ProtocolFailed"]
    assert events[0].status == 431
