"""Response plan for a static file: status, headers and the byte range to
send.  Nothing here opens or reads the file: the driver sends
``(offset, count)`` of it zero-copy with the loop's sendfile.

Rules (RFC 9110 sections 13 and 14), for GET and HEAD (anything else: 405):

- Validators as nginx makes them: ``ETag: "<mtime hex>-<size hex>"`` and
  ``Last-Modified`` from the mtime in whole seconds.
- GET/HEAD with ``If-None-Match`` matching (weak comparison, or ``*``):
  304.  ``If-Modified-Since`` counts only without ``If-None-Match``: 304
  when the file is not newer.
- ``Range`` (GET only): one ``bytes=`` range gives 206 with
  ``Content-Range``; a range starting at or past the end gives 416 with
  ``Content-Range: bytes */<size>``; a syntactically bad header is ignored
  (200).  Several ranges get the whole file with 200: multipart/byteranges
  is rarely worth its cost, and RFC 9110 lets a server ignore Range.
  ``If-Range`` that does not match (strong ETag or exact date) also means
  200 with the whole file.

Driving it: ``p = plan(route.stat, route.path, head.headers, head.method)``
then ``conn.start_response(p.status, p.headers)``; open ``route.path`` and
sendfile ``conn.file_body(p.count)`` bytes from ``p.offset``; then
``conn.end_response()``.
"""

import calendar
import os

from askr.http.h1 import http_date as _format_date
from askr.http.mime import content_type


class StaticPlan:
    """What to answer: ``status``, ``headers`` (``b"Name: value"`` lines,
    Content-Length included) and ``count`` bytes from ``offset``."""

    __slots__ = ("count", "headers", "offset", "status")

    def __init__(self, status: int, headers: list[bytes], offset: int = 0,
                 count: int = 0) -> None:
        self.status = status
        self.headers = headers
        self.offset = offset
        self.count = count

    def __repr__(self) -> str:
        return f"StaticPlan({self.status}, offset={self.offset}, count={self.count})"


_http_dates: dict[int, bytes] = {}


def http_date(seconds: int) -> bytes:
    """IMF-fixdate of ``seconds``; a pure function, so cached (bounded)."""
    text = _http_dates.get(seconds)
    if text is None:
        if len(_http_dates) > 1024:
            _http_dates.clear()
        text = _http_dates[seconds] = _format_date(seconds)
    return text


_MONTH_NUMBERS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
     "nov", "dec"))}


def parse_http_date(value: bytes) -> int | None:
    """Unix time of an HTTP date in any of the three forms RFC 9110 makes
    recipients accept (IMF-fixdate, RFC 850, asctime); None if invalid."""
    parts = value.decode("latin-1").replace(",", " ").split()
    if len(parts) == 6 and parts[5] == "GMT":  # Sun, 06 Nov 1994 08:49:37 GMT
        day, month, year, clock = parts[1], parts[2], parts[3], parts[4]
    elif len(parts) == 4 and parts[3] == "GMT":  # Sunday, 06-Nov-94 08:49:37 GMT
        day, month, year = (parts[1].split("-") + ["", "", ""])[:3]
        clock = parts[2]
        if len(year) == 2 and year.isdigit():
            year = str(2000 + int(year) if int(year) < 70 else 1900 + int(year))
    elif len(parts) == 5:  # Sun Nov  6 08:49:37 1994
        month, day, clock, year = parts[1], parts[2], parts[3], parts[4]
    else:
        return None

    month_number = _MONTH_NUMBERS.get(month.lower())
    hms = clock.split(":")
    if (month_number is None or len(hms) != 3 or not day.isdigit()
            or not year.isdigit() or not all(x.isdigit() for x in hms)):
        return None
    # timegm raises outside years 1..9999 (a worker died on year 0000).
    if len(year) != 4 or year == "0000":
        return None
    hour, minute, second = (int(x) for x in hms)
    if not (1 <= int(day) <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    return calendar.timegm((int(year), month_number, int(day), hour, minute,
                            second))


def _etag_matches(value: bytes, etag: bytes) -> bool:
    """Weak comparison against an If-None-Match list."""
    if value.strip() == b"*":
        return True
    for tag in value.split(b","):
        tag = tag.strip()
        if tag[:2] == b"W/":
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _parse_range(value: bytes, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of a single satisfiable range, "unsatisfiable",
    "many", or None when the header is not a byte range we understand."""
    unit, eq, spec = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    if b"," in spec:
        return "many"
    first, dash, last = spec.strip().partition(b"-")
    if not dash:
        return None
    if not first:
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def plan(st: os.stat_result, path: str, headers: list[tuple[bytes, bytes]],
         method: str = "GET") -> StaticPlan:
    """The answer to a GET/HEAD of the file ``path`` with stat ``st``;
    ``headers`` are the request headers (lower-cased names).  Other
    methods get 405, as nginx answers them for static files."""
    if method != "GET" and method != "HEAD":
        return StaticPlan(405, [b"Allow: GET, HEAD", b"Content-Length: 0"])

    size = st.st_size
    mtime = int(st.st_mtime)
    etag = b'"%x-%x"' % (mtime, size)
    validators = [b"ETag: " + etag, b"Last-Modified: " + http_date(mtime)]

    inm = ims = rng = if_range = None
    for name, value in headers:
        if name[:3] == b"if-" or name == b"range":
            if name == b"if-none-match":
                inm = value
            elif name == b"if-modified-since":
                ims = value
            elif name == b"range":
                rng = value
            elif name == b"if-range":
                if_range = value

    if inm is not None:
        if _etag_matches(inm, etag):
            return StaticPlan(304, validators)
    elif ims is not None:
        since = parse_http_date(ims)
        if since is not None and mtime <= since:
            return StaticPlan(304, validators)

    common = [b"Content-Type: " + content_type(path), *validators,
              b"Accept-Ranges: bytes"]
    if rng is not None and method == "GET" and _if_range_ok(if_range, etag,
                                                            mtime):
        wanted = _parse_range(rng, size)
        if wanted == "unsatisfiable":
            return StaticPlan(416, [*validators, b"Content-Range: bytes */%d" % size,
                                    b"Content-Length: 0"])
        if type(wanted) is tuple:
            first, last = wanted
            count = last - first + 1
            common.append(b"Content-Range: bytes %d-%d/%d" % (first, last, size))
            common.append(b"Content-Length: %d" % count)
            return StaticPlan(206, common, first, count)

    common.append(b"Content-Length: %d" % size)
    return StaticPlan(200, common, 0, size if method != "HEAD" else 0)


def _if_range_ok(if_range: bytes | None, etag: bytes, mtime: int) -> bool:
    if if_range is None:
        return True
    value = if_range.strip()
    if value[:1] == b'"':
        return value == etag
    if value[:2] == b"W/":
        return False  # weak tags never validate a range
    return parse_http_date(value) == mtime
