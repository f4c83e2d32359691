"""HTTP/1.1 server connection, sans-IO, around httptools (llhttp, strict).

Theory of operation
-------------------
Facts.  llhttp parses in C and is strict by default (it refuses CL with TE,
duplicate Content-Length, bad chunk sizes, bare LF, NUL and other control
bytes, obs-fold, invalid header names).  But it always parses the *whole*
buffer it is given and cannot stop at a message boundary, while HTTP/1.1
lets a client pipeline request 2 before response 1 has been sent.

Strategy.  Every buffer goes to the parser at once.  Its callbacks turn what
it finds into events tagged with the number of the message they belong to.
Events of the request being served (its body, its end, its failure) are
returned at once; the events of later requests wait in a queue and come out
of ``next_events()`` only after the current response has ended, so requests
are answered strictly in order.  While anything waits, ``pause_reading`` is
True: the driver stops receiving, which bounds the queue to about one
receive buffer.  On the first protocol failure the parser is dropped, so no
byte after a malformed (possibly smuggled) request is ever interpreted; the
failure event is released in order like any other.  Requests that ask for a
protocol upgrade are served without it and the connection closes after the
response; the bytes after their head are never parsed (they are not HTTP).

The answering side is a small table (``SERVE_TRANSITIONS``): IDLE ->
AWAITING_RESPONSE when a head is handed out -> IDLE after
``simple_response``, or SENDING_BODY after ``start_response`` -> IDLE after
``end_response``.  Anything else is a driver bug (LocalProtocolError).

Head size.  llhttp reports a header only once it is whole, so a head in
progress is measured from the outside: every buffer that starts and ends
inside the same head counts in full.  That is a lower bound (the buffer in
which the head began is not counted, since it may hold earlier pipelined
requests), so it never misfires on pipelining, yet a head trickled in
piece by piece is refused once over the limit.  When a head completes
inside a buffer that might have pushed it over, its exact size (target
plus headers) is checked; the URL is checked piece by piece (414).

Driving it (askr/connection.py does this)::

    conn = H1Connection(max_body_size=..., server=b"Askr")
    for ev in conn.receive_data(data):      # or conn.receive_eof()
        RequestReceived   -> route it; maybe send conn.continue_bytes()
        BodyReceived      -> keep ev.data
        RequestEnded      -> run the request, then answer with either
                               conn.simple_response(status, lines, body), or
                               conn.start_response(status, lines),
                               conn.send_body(data)..., conn.end_response()
                             each returning the bytes to send (a static
                             file: start_response, then sendfile
                             conn.file_body(count) bytes, end_response)
        ProtocolFailed    -> send ev.response (b"" when our response had
                             already started), then close
        ConnectionClosed  -> peer went away mid-request: close
    after a response: if conn.closing, close once the bytes are sent;
                      else handle conn.next_events() the same way
    conn.pause_reading        -> stop / resume receiving
    conn.timer_kind           -> "idle" | "head" | "body" | None: restart the
                                 driver's timer when this value changes
    conn.timeout_fired()      -> bytes to send (408, or b"" when idle), then
                                 close
    conn.disable_keep_alive() -> the next response says Connection: close
    conn.close()              -> when the socket closes (frees the parser)

Response headers are ``b"Name: value"`` lines, exactly as the PHP bridge
hands them over.  Framing headers (Content-Length, Transfer-Encoding,
Connection) are ours: the app's values are read for intent and replaced.
"""

import enum
import time
from collections import deque
from http import HTTPStatus

import httptools

from askr.http.errors import LocalProtocolError, RemoteProtocolError
from askr.http.host import valid_host

# Default limits, each with its precedent.
MAX_REQUEST_LINE = 65536  # nginx takes long query strings (seen: 12 KiB); Go 1 MiB
MAX_HEADER_BYTES = MAX_REQUEST_LINE + 32768  # line + nginx's 4 x 8k of headers
MAX_HEADERS = 100  # Apache LimitRequestFields 100
MAX_BODY_SIZE = 8 * 1024 * 1024  # PHP post_max_size default 8M

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestReceived:
    """A request head.  ``target`` is the raw request-target bytes;
    ``headers`` keeps wire order with lower-cased names; ``content_length``
    is None unless the request carries Content-Length."""

    __slots__ = (
        "chunked",
        "content_length",
        "expects_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(self, method: str, target: bytes, version: str,
                 headers: list[tuple[bytes, bytes]], keep_alive: bool,
                 expects_continue: bool, content_length: int | None,
                 chunked: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.expects_continue = expects_continue
        self.content_length = content_length
        self.chunked = chunked

    def __repr__(self) -> str:
        return f"RequestReceived({self.method} {self.target!r} {self.version})"


class BodyReceived:
    """A piece of the request body (already de-chunked)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"BodyReceived({len(self.data)} bytes)"


class RequestEnded:
    """The request body (if any) is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RequestEnded()"


class ProtocolFailed:
    """The peer broke the protocol.  ``response`` holds the bytes of the
    error answer (Connection: close), or b"" when a response to the same
    request had already begun; nothing more will be parsed."""

    __slots__ = ("reason", "response", "status")

    def __init__(self, status: int, reason: str, response: bytes) -> None:
        self.status = status
        self.reason = reason
        self.response = response

    def error(self) -> RemoteProtocolError:
        return RemoteProtocolError(self.reason, self.status)

    def __repr__(self) -> str:
        return f"ProtocolFailed({self.status}, {self.reason!r})"


class ConnectionClosed:
    """The peer closed its side while no complete request remained."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ConnectionClosed()"


Event = (RequestReceived | BodyReceived | RequestEnded | ProtocolFailed
         | ConnectionClosed)

_ENDED = RequestEnded()


def _status_lines() -> dict[int, bytes]:
    lines = {s.value: b"HTTP/1.1 %d %s" % (s.value, s.phrase.encode())
             for s in HTTPStatus}
    lines[413] = b"HTTP/1.1 413 Content Too Large"  # RFC 9110 name
    return lines


STATUS_LINES = _status_lines()


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <code> <reason>``; unknown codes get an empty reason."""
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise LocalProtocolError(f"bad status {status!r}")
        line = b"HTTP/1.1 %d " % status
    return line


_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug",
           b"Sep", b"Oct", b"Nov", b"Dec")


def http_date(seconds: float) -> bytes:
    """IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) of a Unix time.
    Written here rather than taken from email.utils, which pulls in the
    socket module."""
    t = time.gmtime(seconds)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


_date_second = -1
_date_line = b""


def date_line() -> bytes:
    """``Date: ...`` for the current second, formatted once per second."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_line = b"Date: " + http_date(now)
        _date_second = now
    return _date_line


_DROP = frozenset((b"content-length", b"transfer-encoding", b"connection",
                   b"keep-alive"))
_WATCH_NAME_LENGTHS = frozenset(len(n) for n in (*_DROP, b"date", b"server"))
# Request header names that need a look beyond being stored.
_REQ_SPECIAL = frozenset((b"host", b"content-length", b"transfer-encoding",
                          b"expect"))
_METHODS = {m.encode(): m for m in
            ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

class ServeState(enum.Enum):
    """Where the connection stands in answering its requests.  Whether it
    must close afterwards is a separate flag (``closing``): any state can
    be the last one."""

    IDLE = "idle"  # no request handed out: reading the next one
    AWAITING_RESPONSE = "awaiting-response"  # a head is out, no answer yet
    SENDING_BODY = "sending-body"  # a streamed response's head is out


# (state, input) -> next state.  A pair not listed is a driver bug: the
# connection is marked closing, then LocalProtocolError is raised.
SERVE_TRANSITIONS = {
    (ServeState.IDLE, "request"): ServeState.AWAITING_RESPONSE,
    (ServeState.AWAITING_RESPONSE, "simple_response"): ServeState.IDLE,
    (ServeState.AWAITING_RESPONSE, "start_response"): ServeState.SENDING_BODY,
    (ServeState.SENDING_BODY, "send_body"): ServeState.SENDING_BODY,
    (ServeState.SENDING_BODY, "file_body"): ServeState.SENDING_BODY,
    (ServeState.SENDING_BODY, "end_response"): ServeState.IDLE,
}

_IDLE = ServeState.IDLE
_AWAITING = ServeState.AWAITING_RESPONSE
_SENDING = ServeState.SENDING_BODY

# Response body framing modes.
_NONE, _LENGTH, _CHUNKED, _EOF = range(4)


class _Refused(Exception):
    """Raised inside a parser callback to stop llhttp on the spot."""


class H1Connection:
    """One HTTP/1.x server connection; see the module docstring."""

    def __init__(self, *, max_request_line: int = MAX_REQUEST_LINE,
                 max_header_bytes: int = MAX_HEADER_BYTES,
                 max_headers: int = MAX_HEADERS,
                 max_body_size: int | None = MAX_BODY_SIZE,
                 server: bytes | None = b"Askr") -> None:
        self.max_request_line = max_request_line
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self._server_line = b"Server: " + server if server else None

        self._parser: httptools.HttpRequestParser | None = (
            httptools.HttpRequestParser(self))
        self._queue: deque[tuple[int, Event]] = deque()
        self._fail: tuple[int, str] | None = None
        self._dead = False  # nothing more will be parsed
        self._eof = False
        self._closing = False  # close after the bytes already handed out
        self._no_keep_alive = False

        # Parse side: the message being parsed.
        self._nmsg = 0  # number of the message being parsed (1-based)
        self._in_msg = False
        self._in_head = False
        self._feed_len = 0  # size of the buffer being parsed
        self._ended = 0  # number of the last message fully parsed
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_partial = 0  # head bytes seen outside callbacks
        self._hosts = 0
        self._length: int | None = None
        self._te: bytes | None = None
        self._expect: bytes | None = None
        self._body_bytes = 0

        # Serve side: the request being answered.
        self._serve = 1  # number of the request to answer next
        self.state = _IDLE
        self._active: RequestReceived | None = None
        self._resp_mode = _NONE
        self._resp_left = 0
        self._resp_close = False
        self._continue_sent = False

    # ----------------------------------------------------------- receiving

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events now deliverable.

        ``b""`` is not EOF here: call ``receive_eof()`` for that.
        """
        if self._dead or not data:
            return self._release() if self._queue else []

        in_head = self._in_head
        between = not self._in_msg
        nmsg = self._nmsg
        self._feed_len = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_parsing()
        except httptools.HttpParserError as exc:
            self._parse_error(exc)
        else:
            if self._in_head:
                # The whole buffer is head bytes when the head was already
                # in progress, or when this buffer began the message right
                # at its first byte (nothing else was pending before it).
                whole = nmsg == self._nmsg if in_head else (
                    between and self._nmsg == nmsg + 1)
                self._check_partial_head(whole, len(data))

        if not self._queue:
            return []
        return self._release()

    def receive_eof(self) -> list[Event]:
        """The peer closed its sending side."""
        if not self._eof:
            self._eof = True
            if not self._dead:
                self._queue.append((self._seq_now(), ConnectionClosed()))
                self._stop_parsing()
        return self._release()

    def next_events(self) -> list[Event]:
        """Events released by the end of the previous response."""
        if self._closing or not self._queue:
            return []
        return self._release()

    @property
    def pause_reading(self) -> bool:
        """True while parsed requests wait for their turn."""
        return bool(self._queue)

    @property
    def closing(self) -> bool:
        """True once the connection must close after the bytes handed out."""
        return self._closing

    @property
    def timer_kind(self) -> str | None:
        """Which timeout applies now: "idle" (waiting for a request),
        "head" (part of a head received), "body" (head released, body
        incomplete, no response yet) or None (we are the slow side)."""
        if self._closing:
            return None
        state = self.state
        if state is not _IDLE:
            if state is _AWAITING and self._ended < self._serve:
                return "body"
            return None
        if self._queue or self._dead:
            return None
        return "head" if self._in_msg else "idle"

    def timeout_fired(self) -> bytes:
        """The driver's timer for ``timer_kind`` expired: returns the bytes
        to send (408 when a request was started, b"" when idle) and marks
        the connection closing."""
        kind = self.timer_kind
        self._close()
        if kind == "head" or kind == "body":
            return self.error_response(408)
        return b""

    def continue_bytes(self) -> bytes:
        """``100 Continue`` if the current request asked for it and it is
        still useful (no response yet, body not received), else b""."""
        if (self.state is not _AWAITING or not self._active.expects_continue
                or self._continue_sent or self._ended >= self._serve):
            return b""
        self._continue_sent = True
        return CONTINUE

    def close(self) -> None:
        """The driver closed the socket: drop the parser now (it and this
        object refer to each other, so otherwise only the cyclic GC would
        free them)."""
        self._close()

    def disable_keep_alive(self) -> None:
        """Answer the next response with Connection: close (draining)."""
        self._no_keep_alive = True

    # ------------------------------------------------------------ sending

    def simple_response(self, status: int, headers: list[bytes],
                        body: bytes = b"") -> bytes:
        """Whole response in one go; returns its bytes, ends the response."""
        req = self._begin_response("simple_response")
        lines, given_length, close = self._head_lines(status, headers, req)

        if status < 200 or status == 204 or status == 304:
            body = b""
        elif req.method == "HEAD":
            # The length a GET would get: what the app produced, or what it
            # announced when it skipped the body for HEAD.
            length = len(body) if body else given_length
            if length is not None:
                lines.append(b"Content-Length: %d" % length)
            body = b""
        else:
            lines.append(b"Content-Length: %d" % len(body))

        close = self._close_line(lines, close, req)
        lines.append(b"")
        lines.append(body)
        self._finish_response(close)
        return b"\r\n".join(lines)

    def start_response(self, status: int, headers: list[bytes]) -> bytes:
        """Head of a streamed response.  The body then goes through
        ``send_body`` / ``end_response``: Content-Length as the app gave
        it, else chunked (HTTP/1.1) or close-delimited (HTTP/1.0)."""
        req = self._begin_response("start_response")
        lines, given_length, close = self._head_lines(status, headers, req)

        if status < 200 or status == 204 or status == 304:
            mode = _NONE
        elif req.method == "HEAD":
            mode = _NONE
            if given_length is not None:
                lines.append(b"Content-Length: %d" % given_length)
        elif given_length is not None:
            mode = _LENGTH
            self._resp_left = given_length
            lines.append(b"Content-Length: %d" % given_length)
        elif req.version == "1.1":
            mode = _CHUNKED
            lines.append(b"Transfer-Encoding: chunked")
        else:
            mode = _EOF
            close = True

        self._resp_close = self._close_line(lines, close, req)
        self._resp_mode = mode
        self.state = _SENDING
        lines.append(b"")
        lines.append(b"")
        return b"\r\n".join(lines)

    def send_body(self, data: bytes) -> bytes:
        """Frame a piece of a streamed response body."""
        if self.state is not _SENDING:
            self._illegal("send_body")
        mode = self._resp_mode
        if not data or mode == _NONE:
            return b""
        if mode == _CHUNKED:
            return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))
        if mode == _LENGTH:
            left = self._resp_left
            if len(data) > left:
                # The app wrote more than it announced: cut it off and close
                # rather than let the excess be read as the next response.
                data = data[:left]
                self._resp_close = True
            self._resp_left = left - len(data)
        return data

    def file_body(self, count: int) -> int:
        """The driver is about to send ``count`` body bytes itself (static
        files via sendfile).  Returns how many it may actually send: 0 when
        the response carries no body (HEAD, 304), else at most what the
        announced Content-Length still allows."""
        if self.state is not _SENDING:
            self._illegal("file_body")
        mode = self._resp_mode
        if mode == _NONE:
            return 0
        if mode != _LENGTH:
            raise LocalProtocolError("file bodies need a Content-Length")
        count = min(count, self._resp_left)
        self._resp_left -= count
        return count

    def end_response(self, data: bytes = b"") -> bytes:
        """Last piece of a streamed response (may be empty)."""
        if self.state is not _SENDING:
            self._illegal("end_response")
        out = self.send_body(data)
        mode = self._resp_mode
        close = self._resp_close
        if mode == _CHUNKED:
            out += b"0\r\n\r\n"
        elif mode == _LENGTH and self._resp_left:
            close = True  # short body: only closing tells the client
        elif mode == _EOF:
            close = True
        self._finish_response(close)
        return out

    def error_response(self, status: int, reason: str = "") -> bytes:
        """A small text/plain answer with Connection: close."""
        line = status_line(status)
        body = line[9:] + b"\n"
        if reason:
            body = line[9:] + b": " + reason.encode("ascii", "replace") + b"\n"
        lines = [line, b"Content-Type: text/plain; charset=utf-8",
                 b"Content-Length: %d" % len(body), b"Connection: close",
                 date_line()]
        if self._server_line:
            lines.append(self._server_line)
        lines.append(b"")
        lines.append(body)
        return b"\r\n".join(lines)

    # ------------------------------------------------- response internals

    def _begin_response(self, name: str) -> RequestReceived:
        if self.state is not _AWAITING:
            self._illegal(name)
        return self._active

    def _illegal(self, name: str) -> None:
        """A (state, input) pair missing from SERVE_TRANSITIONS."""
        state = self.state
        self._close()
        raise LocalProtocolError(f"{name} while {state.name}")

    def _head_lines(self, status: int, headers: list[bytes],
                    req: RequestReceived) -> tuple[list[bytes], int | None,
                                                   bool]:
        """Status line plus the app's headers minus framing; also returns
        the app's Content-Length and whether the app asked to close."""
        lines = [status_line(status)]
        append = lines.append
        given_length = None
        close = have_date = have_server = False

        blob = b"".join(headers)
        if b"\n" in blob or b"\r" in blob:
            # A header line with CR/LF would let the app split the response.
            headers = [h for h in headers if b"\r" not in h and b"\n" not in h]

        for h in headers:
            # Only names as long as the ones we care about get split.
            colon = h.find(b":")
            if colon not in _WATCH_NAME_LENGTHS:
                if colon > 0:
                    append(h)
                continue
            name = h[:colon].lower()
            if name == b"date":
                have_date = True
            elif name == b"server":
                have_server = True
            elif name in _DROP:
                value = h[colon + 1:].strip()
                if name == b"content-length":
                    if value.isdigit():
                        given_length = int(value)
                elif name == b"connection":
                    close = close or b"close" in value.lower()
                continue
            append(h)

        if not have_date:
            lines.append(date_line())
        if not have_server and self._server_line:
            lines.append(self._server_line)
        if status < 200 or status == 204 or status == 304:
            given_length = None
        return lines, given_length, close

    def _close_line(self, lines: list[bytes], close: bool,
                    req: RequestReceived) -> bool:
        close = (close or not req.keep_alive or self._no_keep_alive
                 or self._ended < self._serve)
        if close:
            lines.append(b"Connection: close")
        elif req.version == "1.0":
            lines.append(b"Connection: keep-alive")
        return close

    def _finish_response(self, close: bool) -> None:
        self.state = _IDLE
        self._active = None
        self._resp_mode = _NONE
        self._resp_close = False
        self._continue_sent = False
        self._serve += 1
        if close:
            self._close()

    def _close(self) -> None:
        self._closing = True
        self._queue.clear()
        self._stop_parsing()

    # -------------------------------------------------- parse internals

    def _release(self) -> list[Event]:
        """Pop the events that belong to the request being served."""
        queue = self._queue
        out = []
        while queue and queue[0][0] <= self._serve:
            ev = queue.popleft()[1]
            if type(ev) is RequestReceived:
                if self.state is not _IDLE:
                    self._illegal("request")
                self.state = _AWAITING
                self._active = ev
            out.append(ev)
        return out

    def _seq_now(self) -> int:
        return self._nmsg if self._in_msg else self._nmsg + 1

    def _stop_parsing(self) -> None:
        # Dropping the parser also breaks the parser <-> self cycle.
        self._dead = True
        self._parser = None

    def _failed(self, status: int, reason: str) -> None:
        seq = self._seq_now()
        if seq == self._serve and self.state is _SENDING:
            # Our response to this request is already on the wire: an
            # error answer can no longer be framed, only the close.
            response = b""
        else:
            response = self.error_response(status, reason)
        self._queue.append((seq, ProtocolFailed(status, reason, response)))
        self._stop_parsing()

    def _parse_error(self, exc: Exception) -> None:
        if self._fail is not None:
            self._failed(*self._fail)
        elif isinstance(exc, httptools.HttpParserCallbackError):
            # A callback raised something that is not a refusal: our bug.
            self._stop_parsing()
            raise LocalProtocolError("h1 callback failed") from (
                exc.__context__ or exc)
        else:
            self._failed(400, str(exc) or type(exc).__name__)

    def _check_partial_head(self, whole: bool, size: int) -> None:
        """After a buffer that left a head incomplete: refuse a head that
        has grown too large (see the module docstring for the bound)."""
        if whole:
            self._head_partial += size
        if self._head_partial > self.max_header_bytes:
            self._failed(431, "request header too large")
        elif len(self._headers) > self.max_headers:
            self._failed(431, "too many header fields")

    def _head_size(self) -> int:
        size = len(self._target)
        for name, value in self._headers:
            size += len(name) + len(value) + 4
        return size

    def _refuse(self, status: int, reason: str) -> None:
        self._fail = (status, reason)
        raise _Refused(reason)

    # httptools callbacks (this object is the parser's protocol).

    def on_message_begin(self) -> None:
        self._nmsg += 1
        self._in_msg = True
        self._in_head = True
        # Per-message state, reset here rather than in a helper: this runs
        # for every request.
        self._target = b""
        self._headers = []
        self._head_partial = 0
        self._hosts = 0
        self._length = None
        self._te = None
        self._expect = None
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        target = self._target + url if self._target else url
        self._target = target
        if len(target) > self.max_request_line:
            self._refuse(414, "request-target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A chunked trailer: ignored, but counted against the limit.
            self._head_partial += len(name) + len(value) + 4
            if self._head_partial > self.max_header_bytes:
                self._refuse(431, "request trailer too large")
            return

        name = name.lower()
        self._headers.append((name, value))
        if name not in _REQ_SPECIAL:
            return

        if name == b"host":
            self._hosts += 1
            if not valid_host(value.strip()):
                self._refuse(400, "invalid Host")
        elif name == b"content-length":
            try:
                self._length = int(value)  # llhttp checked the digits
            except ValueError:
                self._refuse(400, "bad Content-Length")
        elif name == b"transfer-encoding":
            # Repeated fields are one comma-separated list (RFC 9110 5.3):
            # "gzip" then "chunked" is "gzip, chunked", refused like it.
            self._te = value if self._te is None else self._te + b", " + value
        else:
            self._expect = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self._headers) > self.max_headers:
            self._refuse(431, "too many header fields")
        if (self._feed_len + self._head_partial > self.max_header_bytes
                and self._head_size() > self.max_header_bytes):
            self._refuse(431, "request header too large")
        self._head_partial = 0  # from here on it counts trailer bytes
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            self._refuse(505, "HTTP version not supported")
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")

        length = self._length
        chunked = False
        if self._te is not None:
            if version == "1.0":
                self._refuse(400, "Transfer-Encoding in HTTP/1.0")
            if self._te.strip().lower() != b"chunked":
                self._refuse(501, "unsupported Transfer-Encoding")
            chunked = True

        keep_alive = parser.should_keep_alive()
        if parser.should_upgrade():
            if method == "CONNECT":
                self._refuse(405, "CONNECT not supported")
            if length or chunked:
                self._refuse(400, "upgrade request with a body")
            keep_alive = False

        if self._hosts != 1 and (version == "1.1" or self._hosts > 1):
            self._refuse(400, "missing or repeated Host")
        if (length is not None and self.max_body_size is not None
                and length > self.max_body_size):
            self._refuse(413, "request body too large")

        expects = False
        if self._expect is not None and version == "1.1":
            if self._expect.strip().lower() != b"100-continue":
                self._refuse(417, "unsupported expectation")
            expects = bool(length or chunked)

        self._queue.append((self._nmsg, RequestReceived(
            method, self._target, version, self._headers, keep_alive,
            expects, length, chunked)))

    def on_body(self, data: bytes) -> None:
        self._body_bytes += len(data)
        limit = self.max_body_size
        if limit is not None and self._body_bytes > limit:
            self._refuse(413, "request body too large")
        self._queue.append((self._nmsg, BodyReceived(data)))

    def on_message_complete(self) -> None:
        self._in_msg = False
        self._ended = self._nmsg
        self._queue.append((self._nmsg, _ENDED))

