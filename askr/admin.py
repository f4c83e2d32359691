"""The admin plane: a tiny HTTP/1.1 server run inside the master's loop.

Facts: the master is single-threaded and must never block, since the same
loop reaps workers and reads their control channels.  Admin traffic is a
few small requests (probes, scrapes, an operator's curl).

Strategy: non-blocking sockets registered in the master's selector; every
request is parsed with httptools, answered in one response and the
connection closed (``Connection: close``), so there is no keep-alive state
to manage.  A connection that sends nothing for ``IDLE_TIMEOUT`` seconds or
more than ``MAX_REQUEST`` bytes is dropped.  Routing is a table of
(method, path) -> handler over a ``Plane`` (the supervisor's view).

The listener defaults to loopback; binding a public address needs an
explicit opt-in because the plane can trigger reloads and has no auth.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

import httptools

logger = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0
MAX_REQUEST = 64 * 1024

Response = tuple[int, str, bytes]

REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict",
           503: "Service Unavailable"}


class Plane(Protocol):
    """What the admin plane needs from the supervisor."""

    def status(self) -> dict[str, Any]: ...
    def request_reload(self, canary: bool | None) -> dict[str, Any]: ...
    def healthy(self) -> bool: ...
    def ready(self) -> bool: ...
    def metrics_text(self) -> tuple[bytes, str]: ...


def is_public(host: str) -> bool:
    """True when ``host`` is reachable from other machines."""
    if host in ("localhost", ""):
        return host == ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name: we cannot tell what it resolves to later; be strict.
        return True


def bind(host: str, port: int, *, allow_public: bool = False) -> socket.socket:
    """Bind the admin listener; refuses public addresses unless allowed."""
    if is_public(host) and not allow_public:
        raise ValueError(
            f"admin listen address {host!r} is not loopback; set [admin] "
            "allow_public = true to expose it")

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def json_response(status: int, body: dict[str, Any]) -> Response:
    return status, "application/json", json.dumps(body, indent=1).encode()


def route(plane: Plane, method: str, path: str, query: str) -> Response:
    """Answer one admin request."""
    handlers: dict[str, dict[str, Callable[[], Response]]] = {
        "/api/status": {"GET": lambda: json_response(200, plane.status())},
        "/api/reload": {"POST": lambda: _reload(plane, query)},
        "/health": {"GET": lambda: _probe(plane.healthy())},
        "/ready": {"GET": lambda: _probe(plane.ready())},
        "/metrics": {"GET": lambda: _metrics(plane)},
    }
    methods = handlers.get(path)
    if methods is None:
        return json_response(404, {"error": "not found", "path": path})

    if method == "HEAD" and "GET" in methods:
        method = "GET"
    handler = methods.get(method)
    if handler is None:
        return json_response(405, {"error": "method not allowed",
                                   "allowed": sorted(methods)})
    return handler()


def _reload(plane: Plane, query: str) -> Response:
    values = parse_qs(query).get("canary")
    canary = None
    if values:
        canary = values[-1].lower() in ("1", "true", "yes", "on")
    result = plane.request_reload(canary)
    return json_response(202 if result.get("accepted") else 409, result)


def _probe(ok: bool) -> Response:
    if ok:
        return json_response(200, {"status": "ok"})
    return json_response(503, {"status": "unavailable"})


def _metrics(plane: Plane) -> Response:
    body, content_type = plane.metrics_text()
    return 200, content_type, body


class _Conn:
    """One admin connection: read a request, write a response, close."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.started = time.monotonic()
        self.received = 0
        self.out = b""
        self.url = b""
        self.method = b""
        self.head_done = False
        self.complete = False
        self.parser = httptools.HttpRequestParser(self)

    # Only the first request counts: pipelined ones after it are ignored
    # (their URL must not be glued onto the first one's).
    def on_url(self, url: bytes) -> None:
        if not self.head_done:
            self.url += url

    def on_headers_complete(self) -> None:
        if not self.head_done:
            self.head_done = True
            self.method = self.parser.get_method()

    def on_message_complete(self) -> None:
        self.complete = True


class AdminServer:
    """Serves the admin plane from the master's selector."""

    def __init__(self, sock: socket.socket, plane: Plane,
                 selector: selectors.BaseSelector) -> None:
        self.sock = sock
        self.plane = plane
        self.selector = selector
        self.conns: dict[int, _Conn] = {}
        selector.register(sock, selectors.EVENT_READ, self._on_accept)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]

    def close_sockets(self) -> None:
        """Child side of a fork: drop the sockets, leave the selector be."""
        for conn in self.conns.values():
            conn.sock.close()
        self.conns = {}
        self.sock.close()

    def _on_accept(self, mask: int) -> None:
        for _ in range(16):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("admin accept failed error=%s", exc)
                return
            conn.setblocking(False)
            state = _Conn(conn)
            self.conns[conn.fileno()] = state
            self.selector.register(
                conn, selectors.EVENT_READ,
                lambda mask, c=state: self._on_event(c, mask))

    def _on_event(self, conn: _Conn, mask: int) -> None:
        # This runs in the master's loop: nothing a client sends may raise
        # out of here (an Upgrade header once killed the master).
        try:
            if mask & selectors.EVENT_READ and not conn.out:
                self._read(conn)
            if conn.out and mask & selectors.EVENT_WRITE:
                self._write(conn)
        except Exception:
            logger.exception("admin connection failed")
            self._close(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return

        conn.received += len(data)
        try:
            conn.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade or CONNECT: llhttp stops there; the plane speaks only
            # plain request/response.
            logger.info("admin request refused: protocol upgrade")
            self._respond(conn, json_response(
                400, {"error": "upgrade not supported"}))
            return
        except httptools.HttpParserError as exc:
            logger.info("admin request refused: %s", exc)
            self._respond(conn, json_response(400, {"error": "bad request"}))
            return
        if conn.received > MAX_REQUEST:
            self._close(conn)
            return
        if not conn.complete:
            return

        url = httptools.parse_url(conn.url)
        path = (url.path or b"/").decode("latin-1")
        query = (url.query or b"").decode("latin-1")
        method = conn.method.decode("latin-1")
        try:
            response = route(self.plane, method, path, query)
        except Exception:
            logger.exception("admin handler failed method=%s path=%s",
                             method, path)
            response = json_response(500, {"error": "internal error"})
        logger.debug("admin request method=%s path=%s status=%d",
                     method, path, response[0])
        self._respond(conn, response, head=method == "HEAD")

    def _respond(self, conn: _Conn, response: Response,
                 head: bool = False) -> None:
        status, content_type, body = response
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        conn.out = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if not head:
            conn.out += body
        self.selector.modify(conn.sock, selectors.EVENT_WRITE,
                             lambda mask, c=conn: self._on_event(c, mask))
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def expire(self, now: float) -> None:
        """Drop connections idle for too long (called every loop pass)."""
        for conn in list(self.conns.values()):
            if now - conn.started > IDLE_TIMEOUT:
                self._close(conn)

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self._close(conn)
        try:
            self.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
