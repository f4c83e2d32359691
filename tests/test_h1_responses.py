"""Response framing of the h1 state machine."""

import re

import pytest

from askr.http.errors import LocalProtocolError
from askr.http.h1 import STATUS_LINES, H1Connection, date_line, status_line


def ready(raw=b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", **kw):
    conn = H1Connection(**kw)
    conn.receive_data(raw)
    return conn


def split(out):
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines[0], lines[1:], body


def names(lines):
    return [h.split(b":", 1)[0].lower() for h in lines]


def test_simple_response_whole_body():
    out = ready().simple_response(200, [b"Content-Type: text/html"], b"hello")
    status, lines, body = split(out)

    assert status == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/html" in lines
    assert b"Content-Length: 5" in lines
    assert body == b"hello"
    assert b"server" in names(lines) and b"date" in names(lines)
    assert b"connection" not in names(lines)


def test_app_content_length_replaced_by_real_length():
    out = ready().simple_response(200, [b"Content-Length: 99"], b"abc")
    _, lines, body = split(out)

    assert [h for h in lines if h.lower().startswith(b"content-length")] == [
        b"Content-Length: 3"]
    assert body == b"abc"


def test_repeated_headers_stay_separate_lines():
    out = ready().simple_response(
        200, [b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"Vary: X"], b"")
    _, lines, _ = split(out)

    assert lines.count(b"Set-Cookie: a=1") == 1
    assert lines.count(b"Set-Cookie: b=2") == 1


def test_app_date_and_server_are_kept_not_doubled():
    out = ready().simple_response(200, [b"Date: x", b"Server: y"], b"")
    _, lines, _ = split(out)

    assert names(lines).count(b"date") == 1 and b"Date: x" in lines
    assert names(lines).count(b"server") == 1 and b"Server: y" in lines


def test_server_header_can_be_disabled():
    out = ready(server=None).simple_response(200, [], b"")
    assert b"server" not in names(split(out)[1])


def test_date_header_format():
    assert re.fullmatch(rb"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT",
                        date_line())


@pytest.mark.parametrize("status", [204, 304])
def test_204_304_carry_no_body_no_length(status):
    conn = ready()
    out = conn.simple_response(status, [b"Content-Length: 5",
                                        b"Transfer-Encoding: chunked"], b"hello")
    _, lines, body = split(out)

    assert body == b""
    assert b"content-length" not in names(lines)
    assert b"transfer-encoding" not in names(lines)
    assert not conn.closing


@pytest.mark.parametrize("status", [204, 304])
def test_204_304_streamed_carry_no_body(status):
    conn = ready()
    out = conn.start_response(status, [])
    out += conn.send_body(b"ignored") + conn.end_response(b"more")

    assert out.endswith(b"\r\n\r\n") and b"ignored" not in out
    assert b"transfer-encoding" not in out.lower()


def test_head_gets_length_but_no_body():
    conn = ready(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = conn.simple_response(200, [b"Content-Type: text/plain"], b"hello")
    _, lines, body = split(out)

    assert body == b"" and out.endswith(b"\r\n\r\n")
    assert b"Content-Length: 5" in lines
    assert not conn.closing


def test_head_keeps_announced_length_when_app_skipped_body():
    conn = ready(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = conn.simple_response(200, [b"Content-Length: 1234"], b"")
    assert b"Content-Length: 1234" in split(out)[1]


def test_head_streamed_sends_no_body_and_no_chunking():
    conn = ready(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = conn.start_response(200, []) + conn.send_body(b"x") + conn.end_response()

    assert out.endswith(b"\r\n\r\n") and b"chunked" not in out
    assert not conn.closing


def test_streamed_without_length_is_chunked_on_11():
    conn = ready()
    head = conn.start_response(200, [b"Content-Type: text/plain"])
    assert b"Transfer-Encoding: chunked" in split(head + b"\r\n\r\n")[1]

    out = conn.send_body(b"hello") + conn.send_body(b"") + conn.end_response(b"!")
    assert out == b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"
    assert not conn.closing


def test_streamed_without_length_is_close_delimited_on_10():
    conn = ready(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head = conn.start_response(200, [])
    out = conn.send_body(b"hello") + conn.end_response()

    assert b"chunked" not in head and b"Connection: close" in head
    assert out == b"hello"
    assert conn.closing


def test_streamed_with_length_sent_as_is():
    conn = ready()
    head = conn.start_response(200, [b"Content-Length: 5"])
    out = conn.send_body(b"hel") + conn.end_response(b"lo")

    assert b"Content-Length: 5" in head and out == b"hello"
    assert not conn.closing


def test_streamed_short_body_closes():
    conn = ready()
    conn.start_response(200, [b"Content-Length: 5"])
    conn.end_response(b"hel")
    assert conn.closing


def test_streamed_long_body_is_cut_and_closes():
    conn = ready()
    conn.start_response(200, [b"Content-Length: 3"])
    out = conn.send_body(b"hello") + conn.end_response(b"more")

    assert out == b"hel"
    assert conn.closing


def test_app_connection_close_is_honoured():
    conn = ready()
    out = conn.simple_response(200, [b"Connection: close"], b"")

    assert split(out)[1].count(b"Connection: close") == 1
    assert conn.closing


def test_disable_keep_alive_closes_next_response():
    conn = ready()
    conn.disable_keep_alive()
    out = conn.simple_response(200, [], b"")
    assert b"Connection: close" in out and conn.closing


def test_header_lines_with_crlf_are_dropped():
    out = ready().simple_response(
        200, [b"X-A: 1\r\nSet-Cookie: evil=1", b"X-B: 2", b"X-C: 3\n"], b"")
    _, lines, _ = split(out)

    assert b"X-B: 2" in lines
    assert b"evil" not in out and b"X-C" not in out


def test_header_lines_without_colon_are_dropped_on_slow_path():
    out = ready().simple_response(200, [b"Connection: keep-alive", b"junk"], b"")
    assert b"junk" not in out


@pytest.mark.parametrize(("code", "phrase"), [
    (200, b"OK"), (201, b"Created"), (204, b"No Content"),
    (206, b"Partial Content"), (301, b"Moved Permanently"), (302, b"Found"),
    (304, b"Not Modified"), (307, b"Temporary Redirect"),
    (308, b"Permanent Redirect"), (400, b"Bad Request"), (401, b"Unauthorized"),
    (403, b"Forbidden"), (404, b"Not Found"), (405, b"Method Not Allowed"),
    (408, b"Request Timeout"), (413, b"Content Too Large"),
    (414, b"Request-URI Too Long"), (416, b"Requested Range Not Satisfiable"),
    (419, b""), (422, b"Unprocessable Entity"), (429, b"Too Many Requests"),
    (431, b"Request Header Fields Too Large"), (500, b"Internal Server Error"),
    (502, b"Bad Gateway"), (503, b"Service Unavailable"),
    (504, b"Gateway Timeout"), (505, b"HTTP Version Not Supported"),
])
def test_reason_phrases(code, phrase):
    assert status_line(code) == b"HTTP/1.1 %d %s" % (code, phrase)


def test_bad_status_is_a_local_error():
    with pytest.raises(LocalProtocolError):
        status_line(42)
    assert len(STATUS_LINES) > 50


def test_response_without_request_is_a_local_error():
    conn = H1Connection()
    with pytest.raises(LocalProtocolError):
        conn.simple_response(200, [], b"")
    with pytest.raises(LocalProtocolError):
        conn.send_body(b"x")


def test_second_response_is_a_local_error():
    conn = ready()
    conn.simple_response(200, [], b"")
    with pytest.raises(LocalProtocolError):
        conn.start_response(200, [])


def test_error_response_shape():
    out = H1Connection().error_response(400, "bad chunk")
    status, lines, body = split(out)

    assert status == b"HTTP/1.1 400 Bad Request"
    assert b"Connection: close" in lines
    assert b"Content-Length: %d" % len(body) in lines
