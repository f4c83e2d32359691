"""Hypothesis fuzzing of h1 input: only documented events come out, no
exception escapes, nothing is parsed after a failure, and a request target
never comes from bytes after a failure."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askr.http.h1 import (
    BodyReceived,
    ConnectionClosed,
    H1Connection,
    ProtocolFailed,
    RequestEnded,
    RequestReceived,
)

EVENT_TYPES = (RequestReceived, BodyReceived, RequestEnded, ProtocolFailed,
               ConnectionClosed)

PIECES = [
    b"GET / HTTP/1.1\r\n", b"POST /p HTTP/1.1\r\n", b"HEAD /h HTTP/1.0\r\n",
    b"Host: h\r\n", b"Content-Length: 3\r\n", b"Content-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n",
    b"Expect: 100-continue\r\n", b"Connection: upgrade\r\nUpgrade: x\r\n",
    b"\r\n", b"abc", b"3\r\nabc\r\n", b"0\r\n\r\n", b"\n", b"\x00", b" ",
    b"\r\n ", b"X: y\r\n", b"ffffffff\r\n", b"%00", b"GET /smuggled HTTP/1.1\r\n",
]

stream = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)),
                  max_size=25)
cuts = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10)


def drive(data: bytes, sizes: list[int]):
    conn = H1Connection(max_header_bytes=300, max_headers=8, max_body_size=64)
    seen = []
    failed_at = None
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        chunk = data[pos:pos + n]
        pos += n
        evs = conn.receive_data(chunk)
        if failed_at is not None:
            assert evs == [] or all(
                not isinstance(e, RequestReceived) for e in evs)
        seen += evs
        # Answer every request the moment its end arrives.
        while seen and isinstance(seen[-1], RequestEnded) and not conn.closing:
            conn.simple_response(200, [b"X: 1"], b"ok")
            more = conn.next_events()
            seen += more
            if not more:
                break
        for e in seen:
            assert isinstance(e, EVENT_TYPES)
        fails = [k for k, e in enumerate(seen) if isinstance(e, ProtocolFailed)]
        if fails:
            assert len(fails) == 1
            failed_at = fails[0]
            assert seen[failed_at].response.startswith(b"HTTP/1.1 4") or (
                seen[failed_at].response.startswith(b"HTTP/1.1 50"))
            assert seen[failed_at + 1:] == []
    seen += conn.receive_eof()
    return conn, seen


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(parts=stream, sizes=cuts)
def test_fuzz_no_exception_and_nothing_after_failure(parts, sizes):
    drive(b"".join(parts), sizes)


@settings(max_examples=200, deadline=None)
@given(prefix=stream, sizes=cuts)
def test_fuzz_no_request_after_a_failure(prefix, sizes):
    # Whatever comes first, once a failure event is out no RequestReceived
    # may follow, even with a valid request right behind it.
    data = b"".join(prefix) + b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n"
    _, seen = drive(data, sizes)
    fails = [k for k, e in enumerate(seen) if isinstance(e, ProtocolFailed)]
    if fails:
        assert not any(isinstance(e, RequestReceived)
                       for e in seen[fails[0]:])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), sizes=cuts)
def test_fuzz_raw_bytes(data, sizes):
    drive(data, sizes)
