"""TLS termination without I/O: a context from the config and a MemoryBIO pipe."""

from askr.tls.context import (
    ALPN_PROTOCOLS,
    ReloadableContext,
    TLSConfigError,
    build_context,
)
from askr.tls.pipe import PLAIN_HTTP_REPLY, TLSError, TLSPipe, TLSState

__all__ = [
    "ALPN_PROTOCOLS",
    "PLAIN_HTTP_REPLY",
    "ReloadableContext",
    "TLSConfigError",
    "TLSError",
    "TLSPipe",
    "TLSState",
    "build_context",
]
