"""HTTP/2 server connection without I/O, on top of the ``h2`` library.

The driver feeds the bytes it received and gets request events back; it
answers with ``send(stream_id, status, headers, data, last)`` (the shape of
the PHP bridge's ``job.send``) and writes ``data_to_send()`` to the peer.

Facts:

- ``h2`` parses frames, runs the stream state machines and HPACK, and tracks
  both flow-control windows; it does not buffer what a window cannot take.
- A worker runs one PHP request at a time, so the driver queues requests of
  concurrent streams and answers them in whatever order they finish.
- Responses can be larger than the peer's window.  Each stream keeps a queue
  of body chunks that could not go yet; WINDOW_UPDATE and SETTINGS (a new
  initial window) release them.  ``buffered`` tells the driver how many
  response bytes wait here, for backpressure.
- Request body DATA is acknowledged (WINDOW_UPDATE) when it is handed out,
  unless ``auto_ack=False``: then the driver calls ``ack()`` after consuming.

Abuse limits: h2 itself enforces MAX_CONCURRENT_STREAMS and the header list
size.  Frames that cost us work but open no stream are counted per time
window (the caller passes ``now``): RST_STREAM from the client (the "rapid
reset" attack, CVE-2023-44487), SETTINGS, PING and empty DATA frames.  Past
a limit the connection ends with GOAWAY(ENHANCE_YOUR_CALM).

Draining: ``drain()`` sends GOAWAY(NO_ERROR) naming the last stream we will
serve, keeps serving streams up to it and refuses newer ones.  The h2
library treats any GOAWAY it sends as the end of the connection, so this
GOAWAY frame is serialized here and queued ahead of h2's own output.

Driving it (askr/connection.py does this)::

    conn = H2Server()
    send(conn.data_to_send())                 # our SETTINGS, at once
    for ev in conn.feed(data, now):
        RequestReceived  -> route it (ev.stream_id, ev.method, ev.target,
                            ev.headers with host from :authority)
        BodyReceived     -> keep ev.data for that stream
        RequestEnded     -> queue the stream's PHP request; when it runs,
                            job.send maps to conn.send(stream_id, status,
                            headers, data, last) (False: client gone)
        StreamReset      -> drop the stream's queued request
        ConnectionClosed -> send conn.data_to_send(), then close
    send(conn.data_to_send())                 # after every feed and send
    conn.buffered      -> response bytes waiting for window (backpressure)
    conn.drain()       -> on SIGTERM; close when conn.finished

After a ``ConnectionClosed`` event queued work for the connection can be
dropped.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import deque
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from askr.http.host import valid_host

# Advertised to clients.  100 is the RFC 9113 minimum recommendation and what
# nginx and h2 use; a worker serves one PHP request at a time anyway.
MAX_CONCURRENT_STREAMS = 100
# Same order as nginx's large_client_header_buffers (4 x 8 KiB) with headroom
# for long cookies; HPACK counts 32 bytes of overhead per field.
MAX_HEADER_LIST_SIZE = 64 * 1024

# Headers that describe one HTTP/1.1 hop; forbidden in HTTP/2 (RFC 9113 8.2.2).
CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
     b"upgrade", b"te"}
)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Frames allowed per ``window`` seconds before GOAWAY(ENHANCE_YOUR_CALM).

    Browsers cancel streams when a user navigates away, so resets get room;
    SETTINGS and PING are rare in honest traffic, empty DATA has no use.
    """

    window: float = 10.0
    rst_stream: int = 200
    settings: int = 50
    ping: int = 50
    empty_data: int = 100


# -- events handed to the driver ----------------------------------------------


@dataclass(slots=True)
class RequestReceived:
    """A request head, shaped like ``askr.http.h1.RequestReceived``."""

    stream_id: int
    method: str
    target: bytes  # :path as sent (raw, may hold a query string)
    headers: list[tuple[bytes, bytes]]  # lower-case names; host from :authority
    scheme: bytes
    end: bool  # True when the HEADERS frame ended the stream (no body)
    content_length: int | None = None
    expects_continue: bool = False  # answer with send_continue() first
    version: str = "2.0"  # for SERVER_PROTOCOL "HTTP/2.0", as nginx reports


@dataclass(slots=True)
class BodyReceived:
    stream_id: int
    data: bytes
    flow_length: int  # to pass to ack() when auto_ack is off


@dataclass(slots=True)
class RequestEnded:
    stream_id: int


@dataclass(slots=True)
class StreamReset:
    stream_id: int
    error_code: int
    remote: bool
    reason: str = ""  # set when we refused the stream (see ``refuse``)


@dataclass(slots=True)
class ConnectionClosed:
    error_code: int
    reason: str
    last_stream_id: int | None = None


Event = RequestReceived | BodyReceived | RequestEnded | StreamReset | ConnectionClosed


class _RateWindow:
    """Count hits in fixed windows of ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.start: float | None = None
        self.count = 0

    def hit(self, now: float) -> bool:
        """Record one hit; True when the limit is exceeded."""
        if self.start is None or now - self.start >= self.window:
            self.start = now
            self.count = 0
        self.count += 1
        return self.count > self.limit


@dataclass(slots=True)
class _Stream:
    no_body: bool  # HEAD request or a status without a body
    headers_sent: bool = False
    end_queued: bool = False
    finished: bool = False
    pending: deque[memoryview] = field(default_factory=deque)
    buffered: int = 0
    received: int = 0  # request body bytes so far (for max_body_size)


def response_headers(
    status: int, lines: list[bytes] | None
) -> list[tuple[bytes, bytes]]:
    """Turn PHP's ``b"Name: value"`` lines into HTTP/2 header fields.

    Names are lower-cased; connection-specific headers and lines HTTP/2
    cannot carry (bad name, CR/LF/NUL in the value) are dropped.
    """
    out = [(b":status", b"%d" % status)]
    for line in lines or ():
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name in CONNECTION_HEADERS or not _TOKEN.match(name):
            continue
        if _BAD_VALUE.search(value):
            continue
        out.append((name, value))
    return out


def _no_body_status(status: int) -> bool:
    return status < 200 or status in (204, 304)


class H2Server:
    """One server-side HTTP/2 connection (sans-IO)."""

    def __init__(
        self,
        *,
        max_streams: int = MAX_CONCURRENT_STREAMS,
        max_header_list_size: int = MAX_HEADER_LIST_SIZE,
        limits: FloodLimits = FloodLimits(),
        auto_ack: bool = True,
        max_body_size: int | None = None,
    ) -> None:
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
        )
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            },
        )
        # h2 applies the advertised size only once the client acknowledges
        # our SETTINGS; enforce it from the first HEADERS frame instead.  (A
        # header block split into CONTINUATION frames is bounded by h2's
        # frame buffer: 64 frames.)
        self._conn.decoder.max_header_list_size = max_header_list_size
        self._conn.initiate_connection()

        self.auto_ack = auto_ack
        self.max_body_size = max_body_size
        self.closed = False
        self.draining = False
        self._drain_last: int | None = None
        self._early = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._rates = {
            "rst_stream": _RateWindow(limits.rst_stream, limits.window),
            "settings": _RateWindow(limits.settings, limits.window),
            "ping": _RateWindow(limits.ping, limits.window),
            "empty_data": _RateWindow(limits.empty_data, limits.window),
        }

    # -- input ----------------------------------------------------------------

    def feed(self, data: bytes, now: float | None = None) -> list[Event]:
        """Take bytes from the client; return request events in order."""
        if self.closed:
            return []
        if now is None:
            now = time.monotonic()

        try:
            h2_events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.closed = True
            self._streams.clear()
            code = int(getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR))
            return [ConnectionClosed(code, f"protocol error: {exc}")]

        out: list[Event] = []
        for ev in h2_events:
            self._dispatch(ev, now, out)
            if self.closed:
                break
        return out

    def _dispatch(self, ev: h2.events.Event, now: float, out: list[Event]) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            self._on_request(ev, now, out)

        elif self._refused(getattr(ev, "stream_id", 0) or 0):
            return

        elif isinstance(ev, h2.events.DataReceived):
            if self.auto_ack and ev.flow_controlled_length:
                self._conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id
                )
            st = self._streams.get(ev.stream_id)
            if st is not None and self.max_body_size is not None:
                st.received += len(ev.data)
                if st.received > self.max_body_size:
                    self._too_large(ev.stream_id, out)
                    return
            if ev.data:
                out.append(
                    BodyReceived(ev.stream_id, ev.data, ev.flow_controlled_length)
                )
            elif ev.stream_ended is None and self._flood("empty_data", now, out):
                return

        elif isinstance(ev, h2.events.StreamEnded):
            out.append(RequestEnded(ev.stream_id))

        elif isinstance(ev, h2.events.StreamReset):
            self._streams.pop(ev.stream_id, None)
            out.append(StreamReset(ev.stream_id, int(ev.error_code), ev.remote_reset))
            if ev.remote_reset:
                self._flood("rst_stream", now, out)

        elif isinstance(ev, h2.events.WindowUpdated):
            self._flush_all()

        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            if not self._flood("settings", now, out):
                self._flush_all()

        elif isinstance(ev, h2.events.PingReceived):
            self._flood("ping", now, out)

        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closed = True
            self._streams.clear()
            code = int(ev.error_code) if ev.error_code is not None else 0
            out.append(ConnectionClosed(code, "peer sent goaway", ev.last_stream_id))

        # TrailersReceived (h2 reports the stream end separately), priority
        # and unknown frames carry nothing the application uses.

    def _refused(self, stream_id: int) -> bool:
        # Streams opened after our drain GOAWAY were reset unseen; their later
        # frames must not reach the driver either.
        return self._drain_last is not None and stream_id > self._drain_last

    def _on_request(
        self, ev: h2.events.RequestReceived, now: float, out: list[Event]
    ) -> None:
        sid = ev.stream_id
        if self._refused(sid):
            self._conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            # A client that keeps opening streams after GOAWAY costs us as
            # much as one resetting them.
            self._flood("rst_stream", now, out)
            return

        method = target = scheme = authority = b""
        content_length: int | None = None
        expects_continue = False
        headers: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        for name, value in ev.headers:
            if name.startswith(b":"):
                if name == b":method":
                    method = value
                elif name == b":path":
                    target = value
                elif name == b":scheme":
                    scheme = value
                elif name == b":authority":
                    authority = value
            elif name == b"cookie":
                cookies.append(value)
            elif name == b"host" and authority:
                continue
            else:
                if name == b"content-length" and value.isdigit():
                    content_length = int(value)
                elif name == b"expect" and value.lower() == b"100-continue":
                    expects_continue = True
                headers.append((name, value))

        # :authority replaces Host (RFC 9113 8.3.1); PHP reads HTTP_HOST.
        if authority:
            headers = [(b"host", authority)] + [h for h in headers if h[0] != b"host"]
        # HTTP/2 may split cookies into fields; CGI expects one joined line.
        if cookies:
            headers.append((b"cookie", b"; ".join(cookies)))
        if method == b"CONNECT" and not target:
            target = authority

        self._streams[sid] = _Stream(no_body=method == b"HEAD")
        ended = ev.stream_ended is not None
        host = authority or next((v for n, v in headers if n == b"host"), b"")
        if not valid_host(host):
            # As an invalid Host in HTTP/1.1 (askr/http/host.py).
            self.refuse(sid, 400, "invalid :authority")
            out.append(StreamReset(sid, int(ErrorCodes.NO_ERROR), False,
                                   "400 invalid :authority"))
            return
        if (content_length is not None and self.max_body_size is not None
                and content_length > self.max_body_size):
            # Refused before the driver sees it, as HTTP/1.1 does.
            self._too_large(sid, out)
            return
        out.append(
            RequestReceived(
                sid, method.decode("latin-1"), target, headers, scheme, ended,
                content_length, expects_continue and not ended,
            )
        )

    def _too_large(self, stream_id: int, out: list[Event]) -> None:
        self.refuse(stream_id, 413, "request body too large")
        out.append(StreamReset(stream_id, int(ErrorCodes.NO_ERROR), False,
                               "413 request body too large"))

    def refuse(self, stream_id: int, status: int, reason: str) -> None:
        """Answer a stream whose request we will not read to the end (413,
        408) with a small text response, then RST_STREAM(NO_ERROR) so the
        client stops sending its body (RFC 9113 section 8.1)."""
        if stream_id not in self._streams or self.closed:
            return
        body = b"%d %s\n" % (status, reason.encode("ascii", "replace"))
        self.send(stream_id, status, [
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Length: %d" % len(body)], body, True)
        self._streams.pop(stream_id, None)
        # The stream may be closed already (its END_STREAM came with the
        # HEADERS); then there is nothing left to stop.
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._conn.reset_stream(stream_id, ErrorCodes.NO_ERROR)

    def _flood(self, kind: str, now: float, out: list[Event]) -> bool:
        if not self._rates[kind].hit(now):
            return False
        self._conn.close_connection(
            error_code=ErrorCodes.ENHANCE_YOUR_CALM,
            additional_data=f"{kind} flood".encode(),
        )
        self.closed = True
        self._streams.clear()
        out.append(
            ConnectionClosed(
                int(ErrorCodes.ENHANCE_YOUR_CALM),
                f"{kind.replace('_', ' ')} flood",
                self._conn.highest_inbound_stream_id,
            )
        )
        return True

    def ack(self, stream_id: int, flow_length: int) -> None:
        """Return ``flow_length`` bytes of window (when ``auto_ack`` is off)."""
        if not self.closed and flow_length:
            self._conn.acknowledge_received_data(flow_length, stream_id)

    # -- output -----------------------------------------------------------------

    def send(
        self,
        stream_id: int,
        status: int,
        headers: list[bytes] | None,
        data: bytes,
        last: bool,
    ) -> bool:
        """Send (part of) a response, as ``job.send`` does.

        ``headers`` is read on the first call of a stream only.  Returns False
        when the stream or connection is gone (client reset or closed).
        """
        st = self._streams.get(stream_id)
        if st is None or self.closed or st.end_queued:
            return False

        try:
            if not st.headers_sent:
                if _no_body_status(status):
                    st.no_body = True
                end_now = last and (st.no_body or not data)
                self._conn.send_headers(
                    stream_id, response_headers(status, headers), end_stream=end_now
                )
                st.headers_sent = True
                if end_now:
                    self._finish(stream_id)
                    return True

            if data and not st.no_body:
                st.pending.append(memoryview(data))
                st.buffered += len(data)
            if last:
                st.end_queued = True
            self._flush(stream_id, st)
        except h2.exceptions.StreamClosedError:
            self._streams.pop(stream_id, None)
            return False
        return True

    def send_continue(self, stream_id: int) -> None:
        """Send ``100 Continue`` to a client waiting before its body."""
        st = self._streams.get(stream_id)
        if st is not None and not st.headers_sent and not self.closed:
            self._conn.send_headers(stream_id, [(b":status", b"100")])

    def reset(
        self, stream_id: int, error_code: int = ErrorCodes.INTERNAL_ERROR
    ) -> None:
        """Abort one stream (e.g. PHP failed after the headers went out)."""
        if self._streams.pop(stream_id, None) is not None and not self.closed:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._conn.reset_stream(stream_id, error_code)

    def _flush(self, stream_id: int, st: _Stream) -> None:
        while st.pending:
            window = self._conn.local_flow_control_window(stream_id)
            if window <= 0:
                return
            chunk = st.pending[0]
            size = min(window, self._conn.max_outbound_frame_size, len(chunk))
            if size < len(chunk):
                st.pending[0] = chunk[size:]
            else:
                st.pending.popleft()
            st.buffered -= size
            end = st.end_queued and not st.pending
            self._conn.send_data(stream_id, chunk[:size], end_stream=end)
            if end:
                self._finish(stream_id)
                return

        if st.end_queued and not st.finished:
            self._conn.end_stream(stream_id)
            self._finish(stream_id)

    def _flush_all(self) -> None:
        for sid, st in list(self._streams.items()):
            if not st.pending:
                continue
            try:
                self._flush(sid, st)
            except h2.exceptions.StreamClosedError:
                self._streams.pop(sid, None)

    def _finish(self, stream_id: int) -> None:
        st = self._streams.pop(stream_id, None)
        if st is not None:
            st.finished = True
            st.end_queued = True

    def data_to_send(self) -> bytes:
        """Bytes to write to the client now (may be b"")."""
        data = self._conn.data_to_send()
        if self._early:
            data = bytes(self._early) + data
            self._early.clear()
        return data

    # -- lifecycle ------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Response bytes waiting for the client's flow-control window."""
        return sum(st.buffered for st in self._streams.values())

    @property
    def active_streams(self) -> int:
        """Requests received and not yet fully answered or reset."""
        return len(self._streams)

    @property
    def finished(self) -> bool:
        """True when the connection has nothing left to do and can close."""
        return self.closed or (self.draining and not self._streams)

    def drain(self) -> None:
        """Send GOAWAY(NO_ERROR); serve open streams, refuse new ones."""
        if self.closed or self.draining:
            return
        self.draining = True
        self._drain_last = self._conn.highest_inbound_stream_id
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._drain_last
        frame.error_code = ErrorCodes.NO_ERROR
        # Keep h2's earlier output (its SETTINGS must come first) in order.
        self._early += self._conn.data_to_send()
        self._early += frame.serialize()

    def close(self, error_code: int = ErrorCodes.NO_ERROR) -> bytes:
        """Final GOAWAY; return everything still to send."""
        if not self.closed:
            self.closed = True
            self._conn.close_connection(error_code=error_code)
        self._streams.clear()
        return self.data_to_send()
