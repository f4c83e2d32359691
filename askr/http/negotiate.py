"""Pick the HTTP version of a new connection.

Over TLS the ALPN result decides (``h2`` or ``http/1.1``; no ALPN at all means
HTTP/1.1, as for clients that predate it).  On the cleartext listener HTTP/2
is only spoken with prior knowledge (RFC 9113 section 3.3): the client's
first bytes are the 24-byte connection preface.  Any other first bytes mean
HTTP/1.1.  The preface may arrive split, so ``sniff_preface`` can answer
"not yet known" and the caller keeps the bytes until it can decide; the
bytes are not consumed (the h2 connection object reads the preface itself).
"""

from __future__ import annotations

import enum

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Protocol(enum.Enum):
    HTTP1 = "http/1.1"
    HTTP2 = "h2"


def from_alpn(alpn: str | None) -> Protocol:
    """Protocol selected by ALPN after the TLS handshake."""
    if alpn == "h2":
        return Protocol.HTTP2
    return Protocol.HTTP1


def sniff_preface(data: bytes | bytearray | memoryview) -> Protocol | None:
    """Protocol of a cleartext connection from its first bytes.

    Returns None while ``data`` is a strict prefix of the HTTP/2 preface
    (wait for more bytes; at EOF treat it as HTTP/1.1).
    """
    head = bytes(data[: len(H2_PREFACE)])
    if head == H2_PREFACE:
        return Protocol.HTTP2
    if H2_PREFACE.startswith(head):
        return None
    return Protocol.HTTP1
