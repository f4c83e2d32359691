"""Server-side TLS context built from the ``[tls]`` section (cert and key files).

One ``ssl.SSLContext`` serves every TLS connection of a process.  The policy:

- TLS 1.2 and 1.3 only.  For 1.2 only ECDHE key exchange with AEAD ciphers
  (AES-GCM, ChaCha20-Poly1305); 1.3 suites are all AEAD already.
- Session resumption by tickets (stateless for the server).  The ticket keys
  are random per context, so a context built in the master before ``fork()``
  gives every worker the same keys and a client can resume on any worker.
  A reload makes new keys: old tickets then fall back to a full handshake.
- ALPN offers ``h2`` first, then ``http/1.1``.
- SNI is accepted but not used to pick a certificate (one cert per listener);
  the callback only records the name on the ``SSLObject`` (``askr_sni``).
- No TLS compression (CRIME), no renegotiation (client-initiated
  renegotiation is a cheap CPU attack and HTTP/2 forbids it anyway).

``ReloadableContext`` keeps the current context and swaps it for one built
from the renewed files.  A ``TLSPipe`` binds its context when it is created,
so existing connections keep the old certificate and new ones get the new.
"""

from __future__ import annotations

import os
import ssl

ALPN_PROTOCOLS = ["h2", "http/1.1"]

# ECDHE for forward secrecy, AEAD only; the order lets the client's preference
# win between AES-GCM (fast with AES-NI) and ChaCha20 (fast without it).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

# Tickets sent after a TLS 1.3 handshake; two lets a browser open two
# resumed connections in parallel (OpenSSL's default, stated here on purpose).
NUM_TICKETS = 2

# Attribute set on the SSLObject by the SNI callback.
SNI_ATTRIBUTE = "askr_sni"


class TLSConfigError(Exception):
    """The cert or key file cannot be loaded (message names the file)."""


def _record_sni(
    sslobj: ssl.SSLObject | ssl.SSLSocket,
    server_name: str | None,
    context: ssl.SSLContext,
) -> None:
    # Returning None continues the handshake with the same certificate.
    setattr(sslobj, SNI_ATTRIBUTE, server_name)


def build_context(cert: str, key: str | None = None) -> ssl.SSLContext:
    """Build the server context from PEM files.

    ``cert`` holds the leaf certificate followed by its chain; ``key`` is the
    private key file, or None when the key sits in the ``cert`` file.
    Raises ``TLSConfigError`` naming the file that failed.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers(TLS12_CIPHERS)

    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options &= ~ssl.OP_NO_TICKET
    ctx.num_tickets = NUM_TICKETS

    ctx.set_alpn_protocols(ALPN_PROTOCOLS)
    ctx.sni_callback = _record_sni

    for path in (cert, key):
        if path is not None and not os.access(path, os.R_OK):
            raise TLSConfigError(f"tls file not readable: {path}")
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"tls cert/key load failed: cert={cert} key={key}: {exc}"
        ) from exc
    return ctx


def _stamp(paths: tuple[str, str | None]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        if path is None:
            continue
        st = os.stat(path)
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class ReloadableContext:
    """The current server context plus a way to rebuild it from disk.

    ``context`` is what a new connection should use.  ``reload()`` builds a
    context from the same paths and swaps it in only if the build succeeded,
    so a half-written renewal leaves the old certificate serving.
    """

    def __init__(self, cert: str, key: str | None = None) -> None:
        self.cert = cert
        self.key = key
        self.context = build_context(cert, key)
        self._stamp = _stamp((cert, key))

    def reload(self) -> ssl.SSLContext:
        """Rebuild from the files; raise ``TLSConfigError`` and keep the old."""
        self.context = build_context(self.cert, self.key)
        self._stamp = _stamp((self.cert, self.key))
        return self.context

    def reload_if_changed(self) -> bool:
        """Reload when a file's mtime, size or inode changed; True if swapped."""
        try:
            stamp = _stamp((self.cert, self.key))
        except OSError as exc:
            raise TLSConfigError(f"tls file stat failed: {exc}") from exc
        if stamp == self._stamp:
            return False
        self.reload()
        return True
