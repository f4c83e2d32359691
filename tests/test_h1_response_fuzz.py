"""Property test of response framing: whatever headers and body the app
hands over, what we emit parses back (with llhttp's response parser) as
exactly one message with the right status and body."""

import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from askr.http.h1 import H1Connection

NAMES = [b"Content-Type", b"Content-Length", b"content-length",
         b"Transfer-Encoding", b"Connection", b"Keep-Alive", b"Set-Cookie",
         b"Date", b"Server", b"X-A", b"Location"]
VALUES = [b"0", b"5", b"99", b"chunked", b"close", b"keep-alive", b"text/html",
          b"a=1", b"", b"gzip, chunked"]
header = st.builds(lambda n, v: n + b": " + v, st.sampled_from(NAMES),
                   st.sampled_from(VALUES))
STATUSES = [200, 201, 204, 301, 304, 400, 404, 500]


class Collector:
    def __init__(self):
        self.status = None
        self.headers = []
        self.body = b""
        self.complete = 0

    def on_header(self, name, value):
        self.headers.append((name.lower(), value))

    def on_body(self, data):
        self.body += data

    def on_message_complete(self):
        self.complete += 1


def parse(raw, head_request):
    got = Collector()
    parser = httptools.HttpResponseParser(got)
    if head_request:
        # A response to HEAD has no body whatever its headers say; llhttp
        # cannot know the method, so parse only the head.
        raw = raw[:raw.index(b"\r\n\r\n") + 4]
        got.complete = 1
        parser.feed_data(raw)
    else:
        parser.feed_data(raw)
    got.status = parser.get_status_code()
    return got


def check(got, status, body, head_request, app_headers):
    assert got.status == status
    names = [n for n, _ in got.headers]
    app_names = [h.split(b":")[0].lower() for h in app_headers]
    assert names.count(b"content-length") <= 1
    assert names.count(b"transfer-encoding") <= 1
    assert names.count(b"connection") <= 1
    # Date and Server are added when missing, never doubled by us.
    assert names.count(b"date") == max(1, app_names.count(b"date"))
    assert names.count(b"server") == max(1, app_names.count(b"server"))
    assert not (b"content-length" in names and b"transfer-encoding" in names)
    if status in (204, 304):
        assert b"content-length" not in names
        assert b"transfer-encoding" not in names
    if head_request or status in (204, 304):
        assert got.body == b""
    else:
        assert got.body == body
        assert got.complete == 1


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(header, max_size=6), status=st.sampled_from(STATUSES),
       body=st.binary(max_size=40), head_request=st.booleans())
def test_simple_response_framing(headers, status, body, head_request):
    conn = H1Connection()
    method = b"HEAD" if head_request else b"GET"
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: h\r\n\r\n")

    raw = conn.simple_response(status, headers, body)
    check(parse(raw, head_request), status, body, head_request, headers)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(header, max_size=6), status=st.sampled_from(STATUSES),
       pieces=st.lists(st.binary(max_size=20), max_size=5),
       head_request=st.booleans())
def test_streamed_response_framing(headers, status, pieces, head_request):
    conn = H1Connection()
    method = b"HEAD" if head_request else b"GET"
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: h\r\n\r\n")

    raw = conn.start_response(status, headers)
    for piece in pieces:
        raw += conn.send_body(piece)
    raw += conn.end_response()
    body = b"".join(pieces)
    got = parse(raw, head_request)

    if head_request or status in (204, 304):
        check(got, status, b"", head_request, headers)
        return
    declared = [v for n, v in got.headers if n == b"content-length"]
    if declared and int(declared[0]) != len(body):
        # The app announced a length it did not keep: we cut or stop at
        # the announced length and close the connection.
        assert conn.closing
        assert got.body == body[:int(declared[0])]
        return
    check(got, status, body, head_request, headers)
