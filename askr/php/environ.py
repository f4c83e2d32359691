"""Build the CGI variables that become PHP's ``$_SERVER``.

Theory of operation
-------------------
Laravel and most PHP code were written against nginx + php-fpm, so Askr hands
PHP what a Debian site gets from ``include snippets/fastcgi-php.conf``
(``fastcgi_split_path_info``, ``try_files``, ``PATH_INFO`` and
``fastcgi.conf``) plus what php-fpm adds (``PHP_SELF``).  The result is a
list of ``(name, value)`` byte pairs that the bridge registers in order.
The order is the one ``$_SERVER`` shows under php-fpm, which stores the
FastCGI parameters in a list it walks backwards: the request headers come
first, last header first, then nginx's parameters from ``REDIRECT_STATUS``
back to ``PATH_INFO``, then ``PHP_SELF`` and the request times.
tests/test_environ_matches_nginx_fpm.py checks all this against the real
nginx and php-fpm of the machine.

Deliberate choices (nginx 1.22 + php-fpm 8.2 behaviour unless noted):

* ``REQUEST_URI`` is the raw request target, byte for byte (no decoding, no
  normalisation).  For an absolute-form target (``GET http://h/p?q``) it is
  the path and query only, as nginx's ``$request_uri``.
* ``QUERY_STRING`` is everything after the first ``?`` of the target, raw.
* ``DOCUMENT_URI`` equals ``SCRIPT_NAME``: the snippet's ``try_files
  $fastcgi_script_name`` rewrites ``$uri`` to the script before the
  parameters are evaluated, so path info is not part of it.
* ``PATH_INFO`` is always present (``""`` when empty): the snippet passes
  ``$path_info`` without ``if_not_empty``.
* ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` are always present and ``""`` when
  the request has no such header.  The headers are also passed as
  ``HTTP_CONTENT_TYPE`` / ``HTTP_CONTENT_LENGTH``, as nginx does.
* ``HTTPS=on`` only on TLS connections (``if_not_empty``).
* ``REMOTE_USER`` is NOT sent (nginx sends ``""`` or the user name of an
  unverified ``Authorization: Basic`` header).  Askr has no auth layer and
  PHP derives ``PHP_AUTH_USER`` from the header itself.  ``FCGI_ROLE``, which
  php-fpm adds, is not sent either: Askr does not speak FastCGI.
* ``HTTP_HOST`` is the ``Host`` header as received, port included (what the
  snippet gives: ``fastcgi.conf`` has no ``HTTP_HOST`` line, unlike Debian's
  ``fastcgi_params`` with its ``$host``).  Deviation: for an absolute-form
  target the authority of the target wins over ``Host`` (RFC 9112 section
  3.2.2); nginx 1.22 passes the raw header, the hole Debian's ``$host``
  line was added for.  No ``Host`` and origin-form: no ``HTTP_HOST``.
* Header names are upper-cased with ``-`` turned into ``_``.  A name with any
  byte other than ``[A-Za-z0-9-]`` is dropped, as nginx does with
  ``ignore_invalid_headers on; underscores_in_headers off``: otherwise
  ``X_Forwarded_For`` could shadow ``X-Forwarded-For``.
* Repeated headers are joined with ``", "`` (``"; "`` for ``Cookie``), as nginx
  does for FastCGI since 1.23.0 (1.22 sends each and php-fpm keeps the last).
* ``HTTP_PROXY`` is never set (httpoxy, CVE-2016-5385).
* ``REDIRECT_STATUS=200`` as ``fastcgi.conf`` (php-cgi needs it).
* ``REQUEST_TIME_FLOAT`` / ``REQUEST_TIME``: PHP itself overwrites both after
  the SAPI registers its variables (``php_register_server_variables`` calls
  ``sapi_get_request_time()``), keeping the position of an existing key.
  So they are emitted, last, only when ``request_time`` is given: that
  places them where php-fpm has them and lets the bridge's
  ``get_request_time`` hook report when the request arrived rather than
  when PHP started it.

Caller contract (``askr/http/docroot.py`` and the connection):

* ``script_name`` / ``path_info`` are the decoded, normalised URI split at
  the script: ``/index.php/extra?x=1`` gives ``script_name="/index.php"``,
  ``path_info="/extra"``, so ``PHP_SELF="/index.php/extra"``.  For the front
  controller fallback (``/users/5`` served by ``/index.php``) pass
  ``script_name="/index.php"``, ``path_info=""``: ``REQUEST_URI`` still
  shows ``/users/5``.
* ``headers`` are passed as received; repeated ``Content-Length`` / ``Host``
  were already refused by the HTTP layer.  For a chunked body pass
  ``body_length`` (the decoded size): nginx buffers such a body and sends
  its length as ``CONTENT_LENGTH``.
* ``str`` arguments are encoded as UTF-8 with ``surrogateescape``, so paths
  decoded with ``surrogateescape`` come back as their original bytes.
"""

from __future__ import annotations

from askr import __version__

SOFTWARE = "Askr/" + __version__

# Names that are valid after upper-casing: nginx's ignore_invalid_headers
# accepts letters, digits and '-' (underscores_in_headers is off).
_INVALID_NAME_BYTES = bytes(
    b for b in range(256)
    if not (chr(b).isascii() and (chr(b).isalnum() or chr(b) == "-"))
)

# Raw header name -> b"HTTP_..." (or b"" when dropped).  Clients send a
# handful of distinct spellings, so the cache makes the per-header cost one
# dict lookup; it stops growing at _CACHE_MAX so random names cannot bloat it.
_KEY_CACHE: dict[bytes, bytes] = {}
_CACHE_MAX = 4096

_DROPPED = frozenset((b"HTTP_PROXY",))


def _http_key(name: bytes) -> bytes:
    """Return the CGI name for header ``name``, or b"" if nginx would drop it."""
    if not name or name.translate(None, _INVALID_NAME_BYTES) != name:
        key = b""
    else:
        key = b"HTTP_" + name.upper().replace(b"-", b"_")
        if key in _DROPPED:
            key = b""

    if len(_KEY_CACHE) < _CACHE_MAX:
        _KEY_CACHE[name] = key
    return key


def _http_vars(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Map headers to HTTP_* variables, joining repeats as nginx does."""
    http: dict[bytes, bytes] = {}
    for name, value in headers:
        key = _KEY_CACHE.get(name)
        if key is None:
            key = _http_key(name)
        if not key:
            continue

        if key in http:
            sep = b"; " if key == b"HTTP_COOKIE" else b", "
            http[key] = http[key] + sep + value
        else:
            http[key] = value
    return http


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _split_target(target: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Return (request_uri, query_string, authority_or_None) for a target."""
    authority = None
    if target[:1] != b"/":
        scheme_end = target.find(b"://")
        if scheme_end > 0:
            rest = target[scheme_end + 3:]
            cut = len(rest)
            for sep in (b"/", b"?"):
                at = rest.find(sep)
                if 0 <= at < cut:
                    cut = at
            # Userinfo ("user@") is not part of the host (RFC 9110 4.2.4).
            authority = rest[:cut].rpartition(b"@")[2]
            target = rest[cut:]
            if target[:1] != b"/":
                target = b"/" + target

    return target, target.partition(b"?")[2], authority


# build() runs for every request.  The variables that depend only on the
# listener and the virtual host are encoded once per distinct combination
# (a few per process) instead of eight encodes and formats per request.
_Pairs = tuple[tuple[bytes, bytes], ...]
_Segments = tuple[_Pairs, _Pairs]
_SEGMENT_CACHE: dict[tuple[object, ...], _Segments] = {}


def _segments(
    document_root: str, protocol: str, https: bool, software: str,
    server: tuple[str, int], server_name: str,
) -> _Segments:
    key = (document_root, protocol, https, software, server, server_name)
    # php-fpm's order: the reverse of fastcgi.conf's (see module docstring).
    before_client = [
        (b"REDIRECT_STATUS", b"200"),
        (b"SERVER_NAME", _enc(server_name)),
        (b"SERVER_PORT", b"%d" % server[1]),
        (b"SERVER_ADDR", server[0].encode("ascii")),
    ]
    after_client = [
        (b"SERVER_SOFTWARE", _enc(software)),
        (b"GATEWAY_INTERFACE", b"CGI/1.1"),
    ]
    if https:
        after_client.append((b"HTTPS", b"on"))
    after_client += [
        (b"REQUEST_SCHEME", b"https" if https else b"http"),
        (b"SERVER_PROTOCOL", protocol.encode("ascii")),
        (b"DOCUMENT_ROOT", _enc(document_root)),
    ]
    segments = (tuple(before_client), tuple(after_client))
    if len(_SEGMENT_CACHE) < _CACHE_MAX:
        _SEGMENT_CACHE[key] = segments
    return segments


def build(
    *,
    method: str,
    target: bytes,
    protocol: str,
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int],
    server: tuple[str, int],
    server_name: str,
    https: bool,
    document_root: str,
    script_name: str,
    script_filename: str,
    path_info: str,
    request_time: float | None = None,
    software: str = SOFTWARE,
    body_length: int | None = None,
) -> list[tuple[bytes, bytes]]:
    """Return the ``$_SERVER`` variables for one request, in php-fpm's order.

    ``body_length`` is an Askr addition to the DESIGN.md signature: the
    decoded size of a chunked body, used as CONTENT_LENGTH when the request
    has no Content-Length header.
    """
    if target[:1] == b"/":
        request_uri, query, authority = target, target.partition(b"?")[2], None
    else:
        request_uri, query, authority = _split_target(target)

    # Headers first: CONTENT_* and HTTP_HOST come from them.  The usual
    # request has no repeated or dropped header, and a comprehension over
    # cached names is the cheapest way to map it; anything else (cache miss,
    # repeat, dropped name) shows up as a KeyError or a shorter dict.
    try:
        http = {_KEY_CACHE[name]: value for name, value in headers}
    except KeyError:
        http = _http_vars(headers)
    else:
        if len(http) != len(headers) or b"" in http:
            http = _http_vars(headers)

    if authority is not None:
        http[b"HTTP_HOST"] = authority

    content_length = http.get(b"HTTP_CONTENT_LENGTH")
    if content_length is None:
        content_length = b"" if body_length is None else b"%d" % body_length

    segments = _SEGMENT_CACHE.get(
        (document_root, protocol, https, software, server, server_name)
    ) or _segments(document_root, protocol, https, software, server, server_name)
    before_client, after_client = segments
    path_info_b = path_info.encode("utf-8", "surrogateescape") if path_info else b""
    script_name_b = script_name.encode("utf-8", "surrogateescape")

    # One list display: cheaper than growing the list step by step.
    env = [
        *reversed(http.items()),
        *before_client,
        (b"REMOTE_PORT", b"%d" % client[1]),
        (b"REMOTE_ADDR", client[0].encode("ascii")),
        *after_client,
        (b"DOCUMENT_URI", script_name_b),
        (b"REQUEST_URI", request_uri),
        (b"SCRIPT_NAME", script_name_b),
        (b"CONTENT_LENGTH", content_length),
        (b"CONTENT_TYPE", http.get(b"HTTP_CONTENT_TYPE", b"")),
        (b"REQUEST_METHOD", _METHODS.get(method) or method.encode("ascii")),
        (b"QUERY_STRING", query),
        (b"SCRIPT_FILENAME", script_filename.encode("utf-8", "surrogateescape")),
        (b"PATH_INFO", path_info_b),
        # What php-fpm adds after nginx's parameters.
        (b"PHP_SELF", script_name_b + path_info_b),
    ]
    if request_time is not None:
        env.append((b"REQUEST_TIME_FLOAT", b"%.6f" % request_time))
        env.append((b"REQUEST_TIME", b"%d" % request_time))
    return env


_METHODS = {
    m: m.encode("ascii")
    for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}
