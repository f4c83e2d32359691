"""Errors of the HTTP layer, each carrying its wire mapping.

Two kinds, kept apart on purpose:

- ``RemoteProtocolError``: the peer broke the protocol.  ``status_hint`` is
  the status to answer with (400, 413, 414, 431, ...) before closing.  The
  server logs these at debug/info: they are the client's fault.
- ``LocalProtocolError``: our own code drove the state machine wrongly (a
  body before the head, a second response, ...).  That is a bug and the
  server logs it at error.

The h1 state machine reports peer errors as a ``ProtocolFailed`` event
rather than raising, so a driver never needs ``try`` around
``receive_data``; the exception class exists for code that prefers to raise
(``ProtocolFailed.error()`` builds one).
"""


class ProtocolError(Exception):
    """Base class: something about an HTTP exchange went wrong."""

    status_hint: int = 400

    def __init__(self, reason: str, status_hint: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status_hint is not None:
            self.status_hint = status_hint


class RemoteProtocolError(ProtocolError):
    """The peer sent something we refuse; answer ``status_hint`` and close."""


class LocalProtocolError(ProtocolError):
    """Our side used the API out of order; a bug, never the client's fault."""

    status_hint = 500
