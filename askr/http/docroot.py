"""Map a request-target onto the document root: static file, PHP script,
front controller, redirect or refusal.

Behaviour, modelled on the usual nginx + PHP-FPM site::

    location / { try_files $uri $uri/ /index.php?$query_string; }
    location ~ [^/]\\.php(/|$) { fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
                                try_files $fastcgi_script_name =404; }

1. The target is split at ``?``; only the path is decoded.  Refused: bad or
   truncated %-escapes, NUL (400); invalid UTF-8 including overlong forms
   such as ``%c0%ae`` (400); ``%2F`` (404: an encoded slash never becomes a
   separator); ``.`` and ``..`` segments (400); any other segment starting
   with ``.`` (404: ``.env``, ``.git/``, ``.htaccess``), except a leading
   ``/.well-known/``.  Repeated slashes are merged.
2. The first segment ending in ``.php`` names the script; what follows is
   PATH_INFO.  The script must be a regular file, else 404 (no fallback:
   a missing ``.php`` is not the front controller's business).
3. Otherwise the path is looked up: a regular file is served as static
   (never a PHP-ish file: ``.phtml``, ``.phar``, ``.PHP``... are 404); a
   directory without a trailing slash redirects 301 to ``path/`` (as nginx
   does); a directory with one serves its ``index.php`` or ``index.html``,
   else 403 (nginx's "directory index forbidden"); anything missing goes to
   ``/index.php`` with the original query (404 if there is none).
4. Every path component below the root is ``lstat``-ed once; a symlink is
   followed only if its ``realpath`` stays inside the root (else 404).  The
   last ``lstat`` doubles as the file's stat, so an existing static file
   costs one system call per path segment and nothing is cached.

``root`` must already be a real path (the caller resolves ``current ->
releases/v2`` once per reload).  Absolute-form targets
(``http://host/path``) are reduced to their path; ``*`` is refused.
"""

import os
import stat as statmod
from collections.abc import Sequence

STATIC = "static"
PHP = "php"
REDIRECT = "redirect"
REFUSE = "refuse"

_PHP_LIKE = (".php", ".phtml", ".phar", ".phps", ".php3", ".php4", ".php5",
             ".php7", ".php8", ".pht")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Route:
    """Where a request goes.  ``kind`` is one of STATIC, PHP, REDIRECT,
    REFUSE; ``status`` is 200 for STATIC and PHP.

    STATIC: ``path`` (filesystem path to open) and ``stat``.
    PHP: ``script_filename``, ``script_name``, ``path_info`` and
    ``document_uri`` (for ``$_SERVER``), ``query`` (raw bytes, no ``?``).
    REDIRECT: ``location`` (bytes, for a Location header).
    REFUSE: ``status`` (400, 403 or 404) and ``reason``.
    """

    __slots__ = ("document_uri", "kind", "location", "path", "path_info",
                 "query", "reason", "script_filename", "script_name", "stat",
                 "status")

    def __init__(self, kind: str, status: int = 200, *, path: str = "",
                 stat: os.stat_result | None = None,
                 script_filename: str = "", script_name: str = "",
                 path_info: str = "", document_uri: str = "",
                 query: bytes = b"", location: bytes = b"",
                 reason: str = "") -> None:
        self.kind = kind
        self.status = status
        self.path = path
        self.stat = stat
        self.script_filename = script_filename
        self.script_name = script_name
        self.path_info = path_info
        self.document_uri = document_uri
        self.query = query
        self.location = location
        self.reason = reason

    def __repr__(self) -> str:
        if self.kind == PHP:
            return (f"Route(php {self.script_name!r} "
                    f"path_info={self.path_info!r})")
        if self.kind == STATIC:
            return f"Route(static {self.path!r})"
        return f"Route({self.kind} {self.status} {self.reason or self.location!r})"


def _refuse(status: int, reason: str) -> Route:
    return Route(REFUSE, status, reason=reason)


class _Outside(Exception):
    """A symlink below the root points outside it."""


def split_target(raw_target: bytes) -> tuple[bytes, bytes] | None:
    """``(raw_path, raw_query)`` of an origin- or absolute-form target, or
    None when the target has no path form (``*``, authority-form)."""
    if raw_target[:1] != b"/":
        low = raw_target[:8].lower()
        if low.startswith((b"http://", b"https://")):
            start = raw_target.find(b"//") + 2
            ends = [i for i in (raw_target.find(b"/", start),
                                raw_target.find(b"?", start)) if i >= 0]
            rest = raw_target[min(ends):] if ends else b""
            raw_target = rest if rest[:1] == b"/" else b"/" + rest
        else:
            return None
    path, _, query = raw_target.partition(b"?")
    hash_at = path.find(b"#")
    if hash_at >= 0:
        path = path[:hash_at]
    query = query.partition(b"#")[0]
    return path, query


def decode_path(raw_path: bytes) -> str | Route:
    """Percent-decode and UTF-8-decode a path, or the refusal it earns."""
    if b"%" in raw_path:
        parts = raw_path.split(b"%")
        out = [parts[0]]
        for part in parts[1:]:
            if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
                return _refuse(400, "bad percent-escape")
            byte = int(part[:2], 16)
            if byte == 0x2F:
                return _refuse(404, "encoded slash")
            out.append(bytes((byte,)))
            out.append(part[2:])
        raw_path = b"".join(out)
    if b"\x00" in raw_path:
        return _refuse(400, "NUL in path")
    try:
        return raw_path.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(400, "invalid UTF-8 in path")


def _segments(path: str) -> list[str] | Route:
    segs = [s for s in path.split("/") if s]
    for i, seg in enumerate(segs):
        if seg[0] != ".":
            continue
        if seg == "." or seg == "..":
            return _refuse(400, "dot segment")
        if not (i == 0 and seg == ".well-known"):
            return _refuse(404, "hidden path")
    return segs


def _walk(root: str, segs: Sequence[str]) -> tuple[str, os.stat_result]:
    """lstat each component below root, following symlinks only while they
    stay inside root.  Raises OSError (missing, not a directory, ...) or
    _Outside."""
    path = root
    st = None
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        path = path + "/" + seg
        st = os.lstat(path)
        if statmod.S_ISLNK(st.st_mode):
            real = os.path.realpath(path)
            if not real.startswith(root + "/") and real != root:
                raise _Outside(path)
            st = os.stat(real)
            path = real
        if i < last and not statmod.S_ISDIR(st.st_mode):
            raise NotADirectoryError(path)
    if st is None:
        st = os.stat(root)
    return path, st


def _php(root: str, script_segs: Sequence[str], path_info: str,
         query: bytes) -> Route:
    try:
        _, st = _walk(root, script_segs)
    except _Outside:
        return _refuse(404, "symlink leaves the root")
    except OSError:
        return _refuse(404, "no such script")
    if not statmod.S_ISREG(st.st_mode):
        return _refuse(404, "script is not a file")
    script_name = "/" + "/".join(script_segs)
    return Route(PHP, script_filename=root + script_name,
                 script_name=script_name, path_info=path_info,
                 document_uri=script_name + path_info,
                 query=query)


# What the pure part of resolve() (split, decode, segment checks) made of
# recent targets: it depends on the target bytes alone.  Refusals are not
# kept; the table is emptied when full, so it stays small whatever clients
# send.
_parsed: dict[bytes, tuple[bytes, bytes, str, tuple[str, ...], int]] = {}
_PARSED_MAX = 1024


def _parse(raw_target: bytes) -> tuple[bytes, bytes, str, tuple[str, ...],
                                       int] | Route:
    """``(raw_path, query, path, segments, index of the first .php segment
    or -1)`` of a target, or the refusal it earns."""
    split = split_target(raw_target)
    if split is None:
        return _refuse(400, "target has no path")
    raw_path, query = split
    path = decode_path(raw_path)
    if type(path) is Route:
        return path
    segs = _segments(path)
    if type(segs) is Route:
        return segs
    php_at = next((i for i, seg in enumerate(segs) if seg.endswith(".php")),
                  -1)
    parsed = (raw_path, query, path, tuple(segs), php_at)
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[raw_target] = parsed
    return parsed


def resolve(root: str, raw_target: bytes, *,
            front_controller: str = "index.php") -> Route:
    """Route ``raw_target`` (the request-target bytes as received) against
    ``root`` (a real path, no trailing slash needed).  ``front_controller``
    is the file name, directly in root, that takes every missing path."""
    root = root.rstrip("/")
    parsed = _parsed.get(raw_target)
    if parsed is None:
        parsed = _parse(raw_target)
        if type(parsed) is Route:
            return parsed
    raw_path, query, path, segs, php_at = parsed

    if php_at >= 0:
        rest = segs[php_at + 1:]
        path_info = "/" + "/".join(rest) if rest else ""
        if path.endswith("/"):
            path_info += "/"
        return _php(root, segs[:php_at + 1], path_info, query)

    try:
        fs_path, st = _walk(root, segs)
    except _Outside:
        return _refuse(404, "symlink leaves the root")
    except PermissionError:
        return _refuse(403, "permission denied")
    except (FileNotFoundError, NotADirectoryError):
        return _front(root, front_controller, query)
    except OSError:
        return _refuse(404, "unusable path")

    mode = st.st_mode
    if statmod.S_ISREG(mode):
        if path.endswith("/"):
            return _front(root, front_controller, query)
        if segs[-1].lower().endswith(_PHP_LIKE):
            return _refuse(404, "PHP source is never served")
        return Route(STATIC, path=fs_path, stat=st)

    if not statmod.S_ISDIR(mode):
        return _refuse(403, "not a regular file")
    if not path.endswith("/"):
        location = raw_path + b"/"
        if query:
            location += b"?" + query
        return Route(REDIRECT, 301, location=location)
    return _directory(root, segs, query)


def _directory(root: str, segs: Sequence[str], query: bytes) -> Route:
    route = _php(root, [*segs, "index.php"], "", query)
    if route.kind == PHP:
        return route
    try:
        fs_path, st = _walk(root, [*segs, "index.html"])
    except _Outside:
        return _refuse(404, "symlink leaves the root")
    except OSError:
        return _refuse(403, "directory index forbidden")
    if not statmod.S_ISREG(st.st_mode):
        return _refuse(403, "directory index forbidden")
    return Route(STATIC, path=fs_path, stat=st)


def _front(root: str, front_controller: str, query: bytes) -> Route:
    route = _php(root, [front_controller], "", query)
    if route.kind == REFUSE:
        return _refuse(404, "not found and no front controller")
    return route
