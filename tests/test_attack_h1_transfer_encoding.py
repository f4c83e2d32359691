"""Transfer-Encoding split over several header fields is one list
(RFC 9110 5.3): it must be judged like the joined value."""

from __future__ import annotations

from askr.http import h1

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"


def _events(te_lines: bytes) -> list:
    conn = h1.H1Connection()
    return conn.receive_data(HEAD + te_lines + b"\r\n0\r\n\r\n")


def test_split_gzip_then_chunked_is_refused_like_the_joined_list():
    joined = _events(b"Transfer-Encoding: gzip, chunked\r\n")
    split = _events(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")
    assert [type(e) for e in split] == [h1.ProtocolFailed]
    assert split[0].status == joined[0].status == 501


def test_split_identity_then_chunked_is_refused():
    ev = _events(b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n")
    assert [type(e) for e in ev] == [h1.ProtocolFailed]
    assert ev[0].status == 501


def test_single_chunked_field_still_accepted():
    ev = _events(b"Transfer-Encoding: chunked\r\n")
    assert [type(e) for e in ev] == [h1.RequestReceived, h1.RequestEnded]
    assert ev[0].chunked
