"""TLS as a sans-IO pipe: ciphertext in, plaintext and ciphertext out.

Facts:

- ``ssl.SSLObject`` runs OpenSSL over two ``MemoryBIO`` buffers instead of a
  socket.  We write what the peer sent into the incoming BIO, call OpenSSL,
  and drain the outgoing BIO into bytes the event loop must send.
- A *read* can produce bytes to send.  During the handshake every flight we
  receive is answered by a flight of our own; after it, TLS 1.3 sends session
  tickets once the client's Finished arrives, answers KeyUpdate requests and
  answers close_notify.  So ``feed()`` returns plaintext *and* ciphertext.
- ``SSLWantReadError`` is not a failure: OpenSSL needs more bytes (a record
  arrived only partly).  We return what we have and wait for the next feed.
- ``close_notify`` is TLS's end-of-data alert.  A peer that closes the TCP
  connection without it may have been truncated by an attacker; for HTTP with
  framed bodies that is harmless, so EOF without it just ends the pipe
  (``truncated`` says so).  Our own ``close()`` sends close_notify and does
  not wait for the peer's before the caller may close the socket.
- Renegotiation is disabled in the context, so no handshake can restart.

Strategy: one state enum, ``HANDSHAKE -> WRAPPED -> SHUTDOWN -> CLOSED``
(SHUTDOWN = our close_notify sent, peer's not seen).  Every failure becomes
one ``TLSError`` with a short reason and the bytes still worth sending (an
alert, or the plain-HTTP reply), so the driver logs one line, sends
``err.to_send`` and drops one connection.

Plain HTTP on the TLS port: a TLS connection must start with a handshake
record (first byte 0x16).  If the first byte is an ASCII capital letter the
client most likely spoke HTTP ("GET / ..."): like nginx (its internal status
497), we answer a cleartext ``400`` that says so, then close.

Driving it::

    pipe = TLSPipe(reloadable.context)
    try:
        plain, out = pipe.feed(data)          # data == b"" at EOF
    except TLSError as err:
        log one line with err.reason; send err.to_send; close
    send(out); if pipe.alpn was just set, pick h2 or http/1.1
    (askr.http.negotiate.from_alpn); give plain to that protocol
    send(pipe.wrap(response_bytes))
    on our close: send(pipe.close()), then close the socket
    pipe.state is TLSState.CLOSED -> close after sending

Copies: ``feed()`` hands the caller's bytes straight to the BIO, and reads
plaintext in large chunks that are joined only when there is more than one.
"""

from __future__ import annotations

import contextlib
import enum
import ssl

from askr.tls.context import SNI_ATTRIBUTE

# Largest plaintext chunk asked from OpenSSL per read call; a TLS record holds
# at most 16 KiB, so one call can drain four records.
READ_CHUNK = 65536

_TLS_HANDSHAKE_RECORD = 0x16

_PLAIN_HTTP_BODY = b"400 Bad Request: plain HTTP request sent to the HTTPS port\n"
PLAIN_HTTP_REPLY = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(_PLAIN_HTTP_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n" + _PLAIN_HTTP_BODY
)


class TLSState(enum.Enum):
    HANDSHAKE = "handshake"
    WRAPPED = "wrapped"
    SHUTDOWN = "shutdown"
    CLOSED = "closed"


class TLSError(Exception):
    """One connection failed at the TLS layer.

    ``reason`` is a short operator-readable line; ``to_send`` holds bytes
    worth sending before closing (a TLS alert or the plain-HTTP reply).
    """

    def __init__(self, reason: str, to_send: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.to_send = to_send


def _looks_like_plain_http(first_byte: int) -> bool:
    # Every HTTP method token starts with a capital letter; no TLS record
    # type does (20..24).
    return 0x41 <= first_byte <= 0x5A


class TLSPipe:
    """Server side of one TLS connection, without I/O.

    ``feed(ciphertext)`` -> (plaintext, to_send); ``feed(b"")`` means the peer
    closed its side.  ``wrap(plaintext)`` -> to_send.  ``close()`` -> to_send
    holding close_notify.  Raises ``TLSError`` on failure.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.state = TLSState.HANDSHAKE
        self.alpn: str | None = None
        self.truncated = False
        self._seen_first_byte = False

    # -- information after the handshake ---------------------------------

    @property
    def server_name(self) -> str | None:
        """The SNI host name the client sent, if any."""
        return getattr(self._obj, SNI_ATTRIBUTE, None)

    @property
    def version(self) -> str | None:
        return self._obj.version()

    @property
    def cipher(self) -> str | None:
        info = self._obj.cipher()
        return info[0] if info else None

    @property
    def session_reused(self) -> bool:
        return bool(self._obj.session_reused)

    def peer_certificate_der(self) -> bytes | None:
        return self._obj.getpeercert(binary_form=True)

    # -- the pipe ---------------------------------------------------------

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Take ciphertext from the peer; return (plaintext, bytes to send)."""
        if self.state is TLSState.CLOSED:
            return b"", b""

        if data:
            if not self._seen_first_byte:
                self._seen_first_byte = True
                self._check_first_byte(data[0])
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

        if self.state is TLSState.HANDSHAKE and not self._handshake():
            return b"", self._outgoing.read()

        return self._read_plaintext(), self._outgoing.read()

    def wrap(self, data: bytes | memoryview) -> bytes:
        """Encrypt application data; return the records to send."""
        if self.state is not TLSState.WRAPPED:
            raise TLSError(f"write in state {self.state.value}")
        view = memoryview(data)
        try:
            while view:
                sent = self._obj.write(view)
                view = view[sent:]
        except ssl.SSLError as exc:
            self.state = TLSState.CLOSED
            raise TLSError(f"tls write failed: {_describe(exc)}") from exc
        return self._outgoing.read()

    def close(self) -> bytes:
        """Start a clean shutdown; return close_notify to send (may be b"")."""
        if self.state is TLSState.WRAPPED:
            self.state = TLSState.SHUTDOWN
            try:
                self._obj.unwrap()
                self.state = TLSState.CLOSED
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError:
                self.state = TLSState.CLOSED
            return self._outgoing.read()
        self.state = TLSState.CLOSED
        return b""

    # -- steps --------------------------------------------------------------

    def _check_first_byte(self, first: int) -> None:
        if first == _TLS_HANDSHAKE_RECORD:
            return
        self.state = TLSState.CLOSED
        if _looks_like_plain_http(first):
            raise TLSError("plain HTTP on TLS port", PLAIN_HTTP_REPLY)
        raise TLSError(f"handshake failed: not a TLS record (first byte {first:#04x})")

    def _handshake(self) -> bool:
        """Advance the handshake; True once it is complete."""
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            if self._incoming.eof:
                self.state = TLSState.CLOSED
                raise TLSError("handshake failed: peer closed", self._outgoing.read())
            return False
        except ssl.SSLError as exc:
            self.state = TLSState.CLOSED
            raise TLSError(
                f"handshake failed: {_describe(exc)}", self._outgoing.read()
            ) from exc
        self.state = TLSState.WRAPPED
        self.alpn = self._obj.selected_alpn_protocol()
        return True

    def _read_plaintext(self) -> bytes:
        chunks: list[bytes] = []
        try:
            while True:
                chunk = self._obj.read(READ_CHUNK)
                if not chunk:
                    # Python reports the peer's close_notify as an empty read
                    # (or as SSLZeroReturnError once ours went out too).
                    self._peer_closed()
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self._peer_closed()
        except ssl.SSLEOFError:
            self.truncated = True
            self.state = TLSState.CLOSED
        except ssl.SSLError as exc:
            self.state = TLSState.CLOSED
            raise TLSError(
                f"tls read failed: {_describe(exc)}", self._outgoing.read()
            ) from exc

        if self._incoming.eof and self.state is not TLSState.CLOSED:
            # EOF arrived without close_notify and without a partial record
            # making OpenSSL report it.
            self.truncated = True
            self.state = TLSState.CLOSED

        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def _peer_closed(self) -> None:
        # The peer sent close_notify: answer with ours (unless already sent).
        if self.state is TLSState.WRAPPED:
            with contextlib.suppress(ssl.SSLError):
                self._obj.unwrap()
        self.state = TLSState.CLOSED


def _describe(exc: ssl.SSLError) -> str:
    """Shorten an SSLError to OpenSSL's reason, e.g. 'unsupported protocol'."""
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    return str(exc.args[1] if len(exc.args) > 1 else exc)
