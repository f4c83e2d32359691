"""H2Server, bytes only: the `h2` library plays the client in this process."""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from hypothesis import given, settings
from hypothesis import strategies as st

from askr.http.h2 import (
    BodyReceived,
    ConnectionClosed,
    FloodLimits,
    H2Server,
    RequestEnded,
    RequestReceived,
    StreamReset,
    response_headers,
)
from askr.http.negotiate import H2_PREFACE, Protocol, from_alpn, sniff_preface


class Pair:
    """A client H2Connection and an H2Server joined by byte shuttling."""

    def __init__(
        self,
        server: H2Server | None = None,
        client_settings: dict[int, int] | None = None,
        handshake: bool = True,
    ) -> None:
        self.server = server or H2Server()
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.client = h2.connection.H2Connection(config=config)
        if client_settings:
            self.client.local_settings = h2.settings.Settings(
                client=True, initial_values=client_settings
            )
        self.client.initiate_connection()
        self.now = 0.0
        self.client_events: list[h2.events.Event] = []
        if handshake:
            self.to_server()
            self.to_client()

    def to_server(self) -> list:
        return self.server.feed(self.client.data_to_send(), self.now)

    def to_client(self) -> list[h2.events.Event]:
        events = self.client.receive_data(self.server.data_to_send())
        self.client_events.extend(events)
        return events

    def request(
        self,
        path: bytes = b"/",
        method: bytes = b"GET",
        extra: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
    ) -> int:
        sid = self.client.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":path", path),
            (b":scheme", b"https"),
            (b":authority", b"example.test"),
        ] + (extra or [])
        self.client.send_headers(sid, headers, end_stream=end)
        return sid


def collect(events: list[h2.events.Event]) -> dict[int, dict]:
    """Client-side responses by stream: headers, body, ended."""
    out: dict[int, dict] = {}
    for ev in events:
        sid = getattr(ev, "stream_id", None)
        if sid is None:
            continue
        slot = out.setdefault(sid, {"headers": None, "body": b"", "ended": False})
        if isinstance(ev, h2.events.ResponseReceived):
            slot["headers"] = ev.headers
        elif isinstance(ev, h2.events.DataReceived):
            slot["body"] += ev.data
        elif isinstance(ev, h2.events.StreamEnded):
            slot["ended"] = True
    return out


# -- requests ---------------------------------------------------------------------


def test_h2_request_event_shape() -> None:
    pair = Pair()
    sid = pair.request(
        b"/index.php?a=1&b=%20",
        extra=[(b"cookie", b"a=1"), (b"user-agent", b"t"), (b"cookie", b"b=2")],
    )
    events = pair.to_server()

    assert [type(e) for e in events] == [RequestReceived, RequestEnded]
    req = events[0]
    assert req.stream_id == sid
    assert req.method == "GET"
    assert req.version == "2.0"
    assert req.content_length is None
    assert req.target == b"/index.php?a=1&b=%20"
    assert req.scheme == b"https"
    assert req.end is True
    assert req.headers[0] == (b"host", b"example.test")
    assert (b"user-agent", b"t") in req.headers
    assert (b"cookie", b"a=1; b=2") in req.headers
    assert all(not name.startswith(b":") for name, _ in req.headers)


def test_h2_request_body_and_trailers_ignored() -> None:
    pair = Pair()
    sid = pair.request(
        b"/upload", b"POST", extra=[(b"content-length", b"11")], end=False
    )
    pair.client.send_data(sid, b"part1-")
    pair.client.send_data(sid, b"part2")
    pair.client.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
    events = pair.to_server()

    assert [type(e) for e in events] == [
        RequestReceived, BodyReceived, BodyReceived, RequestEnded,
    ]
    assert events[0].end is False
    assert events[0].method == "POST"
    assert events[0].content_length == 11
    assert b"".join(e.data for e in events if isinstance(e, BodyReceived)) == (
        b"part1-part2"
    )
    assert (b"x-checksum", b"abc") not in events[0].headers

    assert pair.server.send(sid, 201, [b"Content-Type: text/plain"], b"ok", True)
    got = collect(pair.to_client())[sid]
    assert got["ended"] and got["body"] == b"ok"
    assert (b":status", b"201") in got["headers"]


def test_h2_expect_100_continue() -> None:
    pair = Pair()
    sid = pair.request(
        b"/up", b"PUT", extra=[(b"expect", b"100-continue")], end=False
    )
    req = pair.to_server()[0]
    assert isinstance(req, RequestReceived) and req.expects_continue
    pair.server.send_continue(sid)
    informational = [
        e for e in pair.to_client()
        if isinstance(e, h2.events.InformationalResponseReceived)
    ]
    assert informational and dict(informational[0].headers)[b":status"] == b"100"

    pair.client.send_data(sid, b"body", end_stream=True)
    assert [type(e) for e in pair.to_server()] == [BodyReceived, RequestEnded]
    assert pair.server.send(sid, 204, [], b"", True)
    assert collect(pair.to_client())[sid]["ended"]


def test_h2_body_is_acknowledged_for_flow_control() -> None:
    pair = Pair()
    sid = pair.request(b"/big", b"POST", end=False)
    chunk = b"x" * 16384
    sent = 0
    # Far more than the 64 KiB initial windows: only WINDOW_UPDATEs let it go.
    for _ in range(40):
        pair.client.send_data(sid, chunk)
        sent += len(chunk)
        for ev in pair.to_server():
            assert isinstance(ev, (RequestReceived, BodyReceived))
        pair.to_client()
    assert sent == 40 * 16384
    assert pair.client.local_flow_control_window(sid) > 0


def test_h2_manual_ack_holds_the_window() -> None:
    pair = Pair(H2Server(auto_ack=False))
    sid = pair.request(b"/p", b"POST", end=False)
    for _ in range(4):
        pair.client.send_data(sid, b"y" * 15000)
    body = [e for e in pair.to_server() if isinstance(e, BodyReceived)]
    pair.to_client()
    assert pair.client.outbound_flow_control_window == 65535 - 60000

    pair.server.ack(sid, sum(e.flow_length for e in body))
    pair.to_client()
    assert pair.client.outbound_flow_control_window == 65535


# -- responses ------------------------------------------------------------------


def test_h2_100_concurrent_streams_answered_in_any_order() -> None:
    pair = Pair()
    sids = [pair.request(b"/item/%d" % i) for i in range(100)]
    requests = [e for e in pair.to_server() if isinstance(e, RequestReceived)]
    assert [r.stream_id for r in requests] == sids
    assert pair.server.active_streams == 100

    # One PHP request at a time, finishing in arbitrary order.
    order = list(requests)
    random.Random(7).shuffle(order)
    for req in order:
        body = b"answer for " + req.target
        assert pair.server.send(
            req.stream_id, 200, [b"Content-Type: text/plain"], body, True
        )
        pair.to_client()

    got = collect(pair.client_events)
    for i, sid in enumerate(sids):
        assert got[sid]["ended"]
        assert got[sid]["body"] == b"answer for /item/%d" % i
        assert dict(got[sid]["headers"])[b":status"] == b"200"
    assert pair.server.active_streams == 0


def test_h2_streams_over_the_limit_end_the_connection() -> None:
    # The client opens 101 streams before it has seen our SETTINGS.
    pair = Pair(handshake=False)
    for i in range(101):
        pair.request(b"/%d" % i)
    events = pair.to_server()
    assert isinstance(events[-1], ConnectionClosed)
    pair.to_client()
    goaway = [
        e for e in pair.client_events if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway and goaway[0].error_code != ErrorCodes.NO_ERROR


def test_h2_flow_control_small_window_large_body() -> None:
    pair = Pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    sid = pair.request(b"/large")
    pair.to_server()
    body = bytes(range(256)) * 4096  # 1 MiB

    assert pair.server.send(sid, 200, [b"Content-Length: %d" % len(body)], b"", False)
    assert pair.server.send(sid, 200, None, body, True)
    assert pair.server.buffered == len(body) - 1000

    received = b""
    ended = False
    for _ in range(5000):
        for ev in pair.to_client():
            if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                received += ev.data
                pair.client.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
        if ended:
            break
        pair.to_server()
    assert ended
    assert received == body
    assert pair.server.buffered == 0


def test_h2_response_headers_are_cleaned() -> None:
    fields = response_headers(
        302,
        [
            b"Location: /login",
            b"Connection: keep-alive",
            b"Keep-Alive: timeout=5",
            b"Transfer-Encoding: chunked",
            b"Upgrade: websocket",
            b"Set-Cookie: a=1",
            b"Set-Cookie: b=2",
            b"X-Bad: a\r\nInjected: 1",
            b"Bad Name: x",
            b"no colon here",
        ],
    )
    assert fields == [
        (b":status", b"302"),
        (b"location", b"/login"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


@pytest.mark.parametrize(
    "method,status", [(b"HEAD", 200), (b"GET", 204), (b"GET", 304)]
)
def test_h2_bodyless_responses_drop_the_body(method: bytes, status: int) -> None:
    pair = Pair()
    sid = pair.request(b"/", method)
    pair.to_server()
    assert pair.server.send(sid, status, [b"Content-Length: 5"], b"hello", True)
    got = collect(pair.to_client())[sid]
    assert got["ended"] and got["body"] == b""


def test_h2_client_reset_drops_pending_response() -> None:
    pair = Pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    sid = pair.request(b"/")
    pair.to_server()
    assert pair.server.send(sid, 200, [], b"z" * 5000, False)
    assert pair.server.buffered > 0

    pair.client.reset_stream(sid, ErrorCodes.CANCEL)
    events = pair.to_server()
    assert events == [StreamReset(sid, int(ErrorCodes.CANCEL), True)]
    assert pair.server.buffered == 0
    assert pair.server.send(sid, 200, None, b"more", True) is False


def test_h2_server_reset_aborts_one_stream() -> None:
    pair = Pair()
    a, b = pair.request(b"/a"), pair.request(b"/b")
    pair.to_server()
    assert pair.server.send(a, 200, [], b"partial", False)
    pair.server.reset(a)
    assert pair.server.send(a, 200, None, b"rest", True) is False
    assert pair.server.send(b, 200, [], b"fine", True)

    events = pair.to_client()
    resets = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [
        (a, ErrorCodes.INTERNAL_ERROR)
    ]
    assert collect(events)[b]["body"] == b"fine"


# -- abuse limits -----------------------------------------------------------------


def _goaway_code(pair: Pair) -> int | None:
    pair.to_client()
    for ev in pair.client_events:
        if isinstance(ev, h2.events.ConnectionTerminated):
            return ev.error_code
    return None


def test_h2_rapid_reset_flood_gets_goaway() -> None:
    pair = Pair()
    closed: list[ConnectionClosed] = []
    for _ in range(500):
        sid = pair.request(b"/")
        pair.client.reset_stream(sid, ErrorCodes.CANCEL)
        closed += [e for e in pair.to_server() if isinstance(e, ConnectionClosed)]
        if closed:
            break
    assert closed and closed[0].reason == "rst stream flood"
    assert closed[0].error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert _goaway_code(pair) == ErrorCodes.ENHANCE_YOUR_CALM
    assert pair.server.feed(b"anything", pair.now) == []


def test_h2_resets_spread_over_time_are_allowed() -> None:
    limits = FloodLimits(window=1.0, rst_stream=20)
    pair = Pair(H2Server(limits=limits))
    for i in range(200):
        pair.now = i * 0.1  # 10 resets per second, under 20 per window
        sid = pair.request(b"/")
        pair.client.reset_stream(sid, ErrorCodes.CANCEL)
        assert not any(isinstance(e, ConnectionClosed) for e in pair.to_server())
    assert not pair.server.closed


@pytest.mark.parametrize("kind", ["ping", "settings", "empty_data"])
def test_h2_control_frame_floods_get_goaway(kind: str) -> None:
    pair = Pair()
    sid = pair.request(b"/", b"POST", end=False)
    pair.to_server()
    for i in range(300):
        if kind == "ping":
            pair.client.ping(b"%08d" % i)
        elif kind == "settings":
            pair.client.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        else:
            pair.client.send_data(sid, b"")
    events = pair.to_server()
    assert events[-1] == ConnectionClosed(
        int(ErrorCodes.ENHANCE_YOUR_CALM), kind.replace("_", " ") + " flood", sid
    )
    assert _goaway_code(pair) == ErrorCodes.ENHANCE_YOUR_CALM


def test_h2_oversized_header_list_ends_connection() -> None:
    pair = Pair(H2Server(max_header_list_size=8192))
    pair.request(b"/", extra=[(b"x-big", b"v" * 20000)])
    events = pair.to_server()
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert _goaway_code(pair) is not None


def test_h2_garbage_ends_connection_with_goaway() -> None:
    server = H2Server()
    events = server.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert events[0].error_code == ErrorCodes.PROTOCOL_ERROR
    assert server.closed
    assert server.data_to_send()  # SETTINGS and GOAWAY for the peer


# -- drain ----------------------------------------------------------------------


def test_h2_drain_serves_inflight_and_refuses_new() -> None:
    pair = Pair()
    first = pair.request(b"/slow")
    pair.to_server()

    pair.server.drain()
    assert not pair.server.finished
    pair.to_client()
    goaway = [
        e for e in pair.client_events if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway[0].error_code == ErrorCodes.NO_ERROR
    assert goaway[0].last_stream_id == first

    # The h2 client stops opening streams after GOAWAY; write one by hand.
    late = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    late.initiate_connection()
    late.data_to_send()
    late.send_headers(
        first + 2,
        [(b":method", b"GET"), (b":path", b"/late"), (b":scheme", b"https"),
         (b":authority", b"x")],
        end_stream=True,
    )
    raw = late.data_to_send()
    assert pair.server.feed(raw, 0.0) == []  # refused, not handed out
    refused = pair.server.data_to_send()
    assert refused  # RST_STREAM(REFUSED_STREAM)

    assert pair.server.send(first, 200, [], b"done", True)
    assert pair.server.finished
    tail = pair.server.close()
    assert tail


# -- h2c prior knowledge and ALPN -------------------------------------------------


def test_h2_preface_detection() -> None:
    assert sniff_preface(H2_PREFACE + b"\x00\x00") is Protocol.HTTP2
    assert sniff_preface(H2_PREFACE) is Protocol.HTTP2
    assert sniff_preface(b"") is None
    assert sniff_preface(H2_PREFACE[:10]) is None
    assert sniff_preface(b"PRI * HTTP/1.1\r\n") is Protocol.HTTP1
    assert sniff_preface(b"GET / HTTP/1.1\r\n") is Protocol.HTTP1
    assert sniff_preface(memoryview(b"POST")) is Protocol.HTTP1


def test_h2_alpn_mapping() -> None:
    assert from_alpn("h2") is Protocol.HTTP2
    assert from_alpn("http/1.1") is Protocol.HTTP1
    assert from_alpn(None) is Protocol.HTTP1


def test_h2c_prior_knowledge_bytes_feed_the_server_unchanged() -> None:
    # The driver sniffs the preface, then hands the same bytes to H2Server.
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    client = h2.connection.H2Connection(config=config)
    client.initiate_connection()
    client.send_headers(
        1,
        [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
         (b":authority", b"h2c.test")],
        end_stream=True,
    )
    first = client.data_to_send()
    assert sniff_preface(first[:5]) is None
    assert sniff_preface(first) is Protocol.HTTP2

    server = H2Server()
    events = server.feed(first, 0.0)
    assert isinstance(events[0], RequestReceived)
    assert events[0].scheme == b"http"
    assert (b"host", b"h2c.test") in events[0].headers


# -- mutated input --------------------------------------------------------------


def _client_stream() -> bytes:
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    client = h2.connection.H2Connection(config=config)
    client.initiate_connection()
    for _ in range(3):
        sid = client.get_next_available_stream_id()
        client.send_headers(
            sid,
            [(b":method", b"POST"), (b":path", b"/a"), (b":scheme", b"https"),
             (b":authority", b"x"), (b"cookie", b"c=1")],
        )
        client.send_data(sid, b"x" * 100)
        client.send_headers(sid, [(b"x-trailer", b"1")], end_stream=True)
    client.ping(b"12345678")
    return client.data_to_send()


_VALID = _client_stream()


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(len(H2_PREFACE), len(_VALID) - 1), st.integers(0, 255)
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, len(_VALID)),
)
def test_h2_mutated_frames_give_events_or_one_close(
    edits: list[tuple[int, int]], split: int
) -> None:
    data = bytearray(_VALID)
    for pos, value in edits:
        data[pos] = value
    server = H2Server()
    events = server.feed(bytes(data[:split]), 0.0)
    events += server.feed(bytes(data[split:]), 0.0)

    closes = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(closes) <= 1
    if closes:
        assert events[-1] is closes[0] and server.closed
    for ev in events:
        if isinstance(ev, RequestEnded):
            server.send(ev.stream_id, 200, [b"X: y"], b"ok", True)
    assert server.data_to_send()
