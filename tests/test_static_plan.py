"""Static file plans: validators, conditionals, ranges, content types,
and the h1 side of sending a file body."""

import os

import pytest

from askr.http.h1 import H1Connection
from askr.http.mime import content_type
from askr.http.static import http_date, parse_http_date, plan

MTIME = 1_700_000_000
SIZE = 1000
ETAG = b'"%x-%x"' % (MTIME, SIZE)
LAST_MOD = http_date(MTIME)


@pytest.fixture
def st():
    return os.stat_result((0o100644, 1, 1, 1, 0, 0, SIZE, MTIME, MTIME, MTIME))


def hdr(lines, name):
    found = [h.split(b": ", 1)[1] for h in lines
             if h.split(b":", 1)[0].lower() == name]
    return found[0] if found else None


def test_plain_get(st):
    p = plan(st, "/srv/app.css", [])
    assert (p.status, p.offset, p.count) == (200, 0, SIZE)
    assert hdr(p.headers, b"content-type") == b"text/css; charset=utf-8"
    assert hdr(p.headers, b"content-length") == b"1000"
    assert hdr(p.headers, b"etag") == ETAG == b'"6553f100-3e8"'
    assert hdr(p.headers, b"last-modified") == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert hdr(p.headers, b"accept-ranges") == b"bytes"


def test_head_sends_no_bytes_but_full_length(st):
    p = plan(st, "/srv/a.js", [], "HEAD")
    assert p.status == 200 and p.count == 0
    assert hdr(p.headers, b"content-length") == b"1000"


@pytest.mark.parametrize("value", [
    ETAG, b"W/" + ETAG, b'"nope", ' + ETAG, b"*"])
def test_if_none_match_304(st, value):
    p = plan(st, "/f.txt", [(b"if-none-match", value)])
    assert p.status == 304 and p.count == 0
    assert hdr(p.headers, b"etag") == ETAG
    assert hdr(p.headers, b"content-length") is None


def test_if_none_match_mismatch_wins_over_date(st):
    p = plan(st, "/f.txt", [(b"if-none-match", b'"other"'),
                            (b"if-modified-since", LAST_MOD)])
    assert p.status == 200


@pytest.mark.parametrize(("since", "status"), [
    (MTIME, 304), (MTIME + 60, 304), (MTIME - 1, 200)])
def test_if_modified_since(st, since, status):
    p = plan(st, "/f.txt", [(b"if-modified-since", http_date(since))])
    assert p.status == status


def test_bad_if_modified_since_is_ignored(st):
    assert plan(st, "/f", [(b"if-modified-since", b"yesterday")]).status == 200


@pytest.mark.parametrize(("value", "first", "last"), [
    (b"bytes=0-99", 0, 99),
    (b"bytes=100-", 100, 999),
    (b"bytes=-100", 900, 999),
    (b"bytes=990-5000", 990, 999),
    (b"bytes=-5000", 0, 999),
    (b"BYTES=5-5", 5, 5),
])
def test_single_range_206(st, value, first, last):
    p = plan(st, "/v.mp4", [(b"range", value)])
    assert p.status == 206
    assert (p.offset, p.count) == (first, last - first + 1)
    assert hdr(p.headers, b"content-range") == b"bytes %d-%d/1000" % (first, last)
    assert hdr(p.headers, b"content-length") == b"%d" % (last - first + 1)


@pytest.mark.parametrize("value", [b"bytes=1000-", b"bytes=5000-6000", b"bytes=-0"])
def test_unsatisfiable_range_416(st, value):
    p = plan(st, "/v.mp4", [(b"range", value)])
    assert p.status == 416 and p.count == 0
    assert hdr(p.headers, b"content-range") == b"bytes */1000"


@pytest.mark.parametrize("value", [
    b"bytes=5-1", b"items=0-1", b"bytes=a-b", b"bytes", b"bytes=-", b"bytes=1"])
def test_bad_range_is_ignored(st, value):
    p = plan(st, "/v.mp4", [(b"range", value)])
    assert (p.status, p.count) == (200, SIZE)


def test_multiple_ranges_answer_whole_file(st):
    p = plan(st, "/v.mp4", [(b"range", b"bytes=0-1,5-6")])
    assert (p.status, p.offset, p.count) == (200, 0, SIZE)


def test_range_ignored_on_head(st):
    assert plan(st, "/v", [(b"range", b"bytes=0-1")], "HEAD").status == 200


@pytest.mark.parametrize(("if_range", "status"), [
    (ETAG, 206), (b'"old"', 200), (b"W/" + ETAG, 200),
    (LAST_MOD, 206), (http_date(MTIME - 5), 200)])
def test_if_range(st, if_range, status):
    p = plan(st, "/v", [(b"range", b"bytes=0-9"), (b"if-range", if_range)])
    assert p.status == status


def test_empty_file_range_is_416():
    st = os.stat_result((0o100644, 1, 1, 1, 0, 0, 0, MTIME, MTIME, MTIME))
    assert plan(st, "/e", [(b"range", b"bytes=0-")]).status == 416
    assert plan(st, "/e", []).count == 0


@pytest.mark.parametrize(("path", "ctype"), [
    ("/a.css", b"text/css; charset=utf-8"),
    ("/a.js", b"text/javascript; charset=utf-8"),
    ("/a.json", b"application/json"),
    ("/a.svg", b"image/svg+xml"),
    ("/f.woff2", b"font/woff2"),
    ("/m.wasm", b"application/wasm"),
    ("/i.HTML", b"text/html; charset=utf-8"),
    ("/p.png", b"image/png"),
    ("/noext", b"application/octet-stream"),
    ("/dir.d/noext", b"application/octet-stream"),
    ("/x.unknown", b"application/octet-stream"),
])
def test_content_types(path, ctype):
    assert content_type(path) == ctype


def test_h1_sends_file_body_with_length(st):
    conn = H1Connection()
    conn.receive_data(b"GET /v HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n")
    p = plan(st, "/v", [(b"range", b"bytes=0-9")])
    head = conn.start_response(p.status, p.headers)

    assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert b"\r\nContent-Length: 10\r\n" in head
    assert conn.file_body(p.count) == 10
    assert conn.end_response() == b""
    assert not conn.closing


def test_h1_head_file_body_is_zero(st):
    conn = H1Connection()
    conn.receive_data(b"HEAD /v HTTP/1.1\r\nHost: h\r\n\r\n")
    p = plan(st, "/v", [], "HEAD")
    head = conn.start_response(p.status, p.headers)

    assert b"Content-Length: 1000" in head
    assert conn.file_body(SIZE) == 0
    conn.end_response()
    assert not conn.closing


def test_h1_304_has_no_body(st):
    conn = H1Connection()
    conn.receive_data(b"GET /v HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n")
    p = plan(st, "/v", [(b"if-none-match", b"*")])
    head = conn.start_response(p.status, p.headers)

    assert head.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert b"Content-Length" not in head and b"chunked" not in head
    assert conn.file_body(0) == 0


def test_http_date_matches_email_utils():
    from email.utils import formatdate

    for t in (0, 784111777, MTIME, 2_000_000_000, 951_782_400):
        assert http_date(t) == formatdate(t, usegmt=True).encode()


@pytest.mark.parametrize("value", [
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sunday, 06-Nov-94 08:49:37 GMT",
    b"Sun Nov  6 08:49:37 1994",
])
def test_parse_http_date_three_forms(value):
    assert parse_http_date(value) == 784111777


@pytest.mark.parametrize("value", [
    b"", b"yesterday", b"Sun, 06 Nov 1994 08:49:37 CET", b"Sun, 32 Nov 1994 08:49:37 GMT",
    b"Sun, 06 Foo 1994 08:49:37 GMT", b"Sun, 06 Nov 1994 25:49:37 GMT",
    b"Sun, 06 Nov 1994 08:49 GMT", b"\xff\xfe",
    # Years timegm cannot take: year 0 used to raise and kill the worker.
    b"Fri, 04 Dec 0000 00:00:00 GMT", b"Sun Nov  6 08:49:37 0000",
    b"Sun, 06 Nov 19940 08:49:37 GMT", b"Sun, 06 Nov " + b"9" * 5000 + b" 08:49:37 GMT"])
def test_parse_http_date_rejects(value):
    assert parse_http_date(value) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_405(st, method):
    p = plan(st, "/a.css", [], method)
    assert (p.status, p.count) == (405, 0)
    assert hdr(p.headers, b"allow") == b"GET, HEAD"
