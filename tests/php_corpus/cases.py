"""The request manifest of the differential corpus.

Each Case is one request against one script of this directory.  The test
(tests/test_bridge_matches_php_cgi.py) builds the CGI variables with
askr.php.environ, runs the request through php-cgi and through the bridge,
and compares status, headers and body.  ``expect_*`` fields are checked
against php-cgi alone, so the corpus proves it exercises what it claims to
even before the bridge exists.

Bodies are made here, programmatically, so no large file lives in git.
Cases run in list order through one bridge process: fresh_state.php after
ini_set.php and the session cases depend on that order on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

MiB = 1 << 20
BOUNDARY = b"----askrcorpusBoundary7MA4YWxkTrZu0gW"


@dataclass
class Case:
    name: str
    script: str
    method: str = "GET"
    query: bytes = b""
    path_info: str = ""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # bytes, or a callable making them (large bodies are built on demand).
    body: bytes | Callable[[], bytes] = b""
    # "memory": job.body holds the body; "fd": job.body_fd, as when spooled.
    body_mode: str = "memory"
    # Send the body as if it came chunked: no Content-Length header.
    chunked: bool = False
    # Facts about php-cgi's answer that make the case meaningful.
    expect_status: int = 200
    expect_in_body: list[bytes] = field(default_factory=list)
    expect_log: str | None = None
    # The bridge must have called job.send() at least this many times.
    min_sends: int = 1
    target: bytes | None = None

    def request_target(self) -> bytes:
        if self.target is not None:
            return self.target
        path = ("/" + self.script + self.path_info).encode()
        return path + (b"?" + self.query if self.query else b"")

    def make_body(self) -> bytes:
        return self.body() if callable(self.body) else self.body


def multipart(
    parts: list[tuple[str, str | None, str | None, bytes]],
    boundary: bytes = BOUNDARY,
    close: bool = True,
) -> bytes:
    """Encode (field, filename, content type, data) parts as form-data."""
    out = []
    for name, filename, ctype, data in parts:
        disposition = b'Content-Disposition: form-data; name="%s"' % name.encode()
        if filename is not None:
            disposition += b'; filename="%s"' % filename.encode()
        out.append(b"--" + boundary + b"\r\n" + disposition + b"\r\n")
        if ctype is not None:
            out.append(b"Content-Type: " + ctype.encode() + b"\r\n")
        out.append(b"\r\n" + data + b"\r\n")
    if close:
        out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


_MP_TYPE = b"multipart/form-data; boundary=" + BOUNDARY
_FORM_TYPE = b"application/x-www-form-urlencoded"


def _pattern(size: int) -> bytes:
    block = bytes(range(256)) * 4096  # 1 MiB of every byte value
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def _md5_of_pattern(size: int) -> bytes:
    return hashlib.md5(_pattern(size)).hexdigest().encode()


def _upload(size: int) -> Callable[[], bytes]:
    def make() -> bytes:
        return multipart([
            ("note", None, None, b"size %d" % size),
            ("file", "data.bin", "application/octet-stream", _pattern(size)),
        ])
    return make


def _many_files() -> bytes:
    parts = [("f[]", f"f{i:02d}.txt", "text/plain", b"file %d" % i) for i in range(25)]
    return multipart(parts)


def _truncated() -> bytes:
    whole = multipart([
        ("field", None, None, b"kept"),
        ("file", "cut.bin", "application/octet-stream", _pattern(64 * 1024)),
    ])
    # Cut inside the file's data: no closing boundary ever arrives.
    return whole[: len(whole) - 30 * 1024]


def _max_input_query() -> bytes:
    return b"&".join(b"v%d=%d" % (i, i) for i in range(1100))


ONE_MIB_MD5 = _md5_of_pattern(MiB)
FIFTY_MIB_MD5 = _md5_of_pattern(50 * MiB)
EMPTY_MD5 = hashlib.md5(b"").hexdigest().encode()


CASES: list[Case] = [
    # --- superglobals -----------------------------------------------------
    Case("server_plain", "server_dump.php", query=b"x=1&y=2",
         headers=[(b"Host", b"corpus.test:8080"), (b"User-Agent", b"corpus/1"),
                  (b"Accept", b"*/*"), (b"X-Custom", b"one"), (b"X-Custom", b"two")],
         expect_in_body=[b"HTTP_X_CUSTOM='one, two'", b"REQUEST_TIME='integer'"]),
    Case("server_post", "server_dump.php", method="POST",
         headers=[(b"Host", b"corpus.test"), (b"Content-Type", _FORM_TYPE)],
         body=b"a=1", expect_in_body=[b"CONTENT_LENGTH='3'"]),
    Case("server_path_info", "server_dump.php", path_info="/extra/bits",
         query=b"q=1", expect_in_body=[b"PHP_SELF='/server_dump.php/extra/bits'"]),
    Case("request_time", "request_time.php",
         expect_in_body=[(b"float=true int=true consistent=true recent=true"
                         b" last=PHP_SELF,REQUEST_TIME_FLOAT,REQUEST_TIME")]),
    Case("raw_bytes_query", "query_edge.php", query=b"q=\xff\xfe&r=%FF&s=\xc3\xa9",
         expect_in_body=[b"q=\xff\xfe&r=%FF&s=\xc3\xa9"]),
    Case("long_query", "max_input_vars.php", query=b"k=" + b"v" * 65536,
         expect_in_body=[b"1 0 last='k'"]),
    Case("many_request_headers", "header_count.php",
         headers=[(b"X-H-%d" % i, b"value %d" % i) for i in range(150)]
         + [(b"X-Big", b"b" * 16384)],
         expect_in_body=[b"151 16384 "]),
    Case("get_nested", "get_dump.php",
         query=b"a[]=1&a[b]=2&a[c][d]=3&a[]=4&list[]=x&list[]=y&plain=p%20q+r",
         expect_in_body=[b"'b' => '2'", b"'plain' => 'p q r'"]),
    Case("get_edge_names", "query_edge.php",
         query=b"a.b=1&a%20b=2&c[=3&e[x=4]=5&=y&novalue&empty=&dup=1&dup=2",
         expect_in_body=[b"'a_b' => '2'", b"'dup' => '2'"]),
    Case("get_deep_nesting", "get_dump.php",
         query=b"n" + b"[a]" * 70 + b"=deep&ok=1",
         expect_in_body=[b"'ok' => '1'"]),
    Case("max_input_vars", "max_input_vars.php", query=_max_input_query(),
         expect_in_body=[b"1000 0"], expect_log="Input variables exceeded 1000"),
    Case("post_urlencoded", "post_dump.php", method="POST", query=b"g=1",
         headers=[(b"Content-Type", _FORM_TYPE)],
         body=b"a[]=1&a[k]=2&name=caf%C3%A9&g=post",
         expect_in_body=[b"'name' => 'caf\xc3\xa9'"]),
    Case("post_urlencoded_charset", "post_dump.php", method="POST",
         headers=[(b"Content-Type", _FORM_TYPE + b"; charset=UTF-8")],
         body=b"x=1", expect_in_body=[b"'x' => '1'"]),
    Case("request_merge", "request_merge.php", method="POST", query=b"k=get&g=1",
         headers=[(b"Content-Type", _FORM_TYPE), (b"Cookie", b"c=cookie; k=ck")],
         body=b"k=post", expect_in_body=[b"post cookie-out"]),
    Case("cookies", "cookie_dump.php",
         headers=[(b"Cookie", b"a=1; b=two%20words; c.d=3; e[]=x; e[]=y"),
                  (b"Cookie", b"f=last; a=dup")],
         expect_in_body=[b"'c_d' => '3'", b"'b' => 'two words'"]),
    Case("cookies_odd", "cookie_dump.php",
         headers=[(b"Cookie", b"  spaced = v ;novalue; =noname; q=\"quoted\"")]),
    Case("env_and_argv", "env_and_argv.php", query=b"noequals",
         expect_in_body=[b"argv=unset"]),
    Case("getenv", "getenv.php", query=b"z=1",
         headers=[(b"X-Custom", b"from-header")],
         expect_in_body=[b"HTTP_X_CUSTOM='from-header'"]),
    Case("path_info", "path_info.php", path_info="/a/b.c/", query=b"x",
         expect_in_body=[b"PATH_INFO='/a/b.c/'", b"self-matches=true"]),
    Case("path_info_empty", "path_info.php", expect_in_body=[b"PATH_INFO=''"]),
    Case("path_info_utf8", "utf8.php", path_info="/caf\u00e9",
         query=b"q=%E2%9C%93", expect_in_body=["\u2713 3 /caf\u00e9 6".encode()]),
    Case("auth_basic", "auth.php",
         headers=[(b"Authorization", b"Basic dXNlcjpwYXNzOndvcmQ=")],
         expect_in_body=[b"PHP_AUTH_PW='pass:word'"]),
    Case("auth_digest", "auth.php",
         headers=[(b"Authorization", b'Digest username="u", realm="r"')],
         expect_in_body=[b"PHP_AUTH_DIGEST="]),
    Case("auth_bearer", "auth.php",
         headers=[(b"Authorization", b"Bearer abc.def")],
         expect_in_body=[b"PHP_AUTH_USER=NULL"]),
    Case("fresh_state_first", "fresh_state.php", expect_in_body=[b"1 1 14"]),
    Case("fresh_state_second", "fresh_state.php", expect_in_body=[b"1 1 14"]),
    Case("ini_set", "ini_set.php", expect_in_body=[b"5 0.33333"]),
    Case("ini_restored", "fresh_state.php", expect_in_body=[b"1 1 14"]),
    Case("include_relative", "include_relative.php",
         expect_in_body=[b"helper-loaded cwd-is-script-dir=true"]),
    Case("file_constants", "file_constants.php",
         expect_in_body=[b"file=true included=1 rel=/file_constants.php"]),
    Case("opcache_loaded", "opcache_loaded.php"),
    Case("connection_status", "connection_status.php", expect_in_body=[b"0 0 0"]),
    # --- request bodies -------------------------------------------------
    Case("raw_json", "raw_input.php", method="POST",
         headers=[(b"Content-Type", b"application/json")],
         body=b'{"a": [1, 2, {"b": null}]}',
         expect_in_body=[b"same", b"POST=array (\n)"]),
    Case("raw_json_spooled", "raw_input.php", method="POST", body_mode="fd",
         headers=[(b"Content-Type", b"application/json")],
         body=b'{"spooled": true}', expect_in_body=[b"17 "]),
    Case("raw_empty_post", "raw_input.php", method="POST",
         expect_in_body=[b"0 d41d8cd98f00b204e9800998ecf8427e same"]),
    Case("raw_stream_1mib", "raw_input_stream.php", method="PUT",
         headers=[(b"Content-Type", b"application/octet-stream")],
         body=lambda: _pattern(MiB), expect_in_body=[b"1048576 "]),
    Case("raw_stream_chunked", "raw_input_stream.php", method="PUT", chunked=True,
         body=lambda: _pattern(300 * 1024), expect_in_body=[b"307200 "]),
    Case("raw_stream_spooled", "raw_input_stream.php", method="POST", body_mode="fd",
         headers=[(b"Content-Type", b"application/octet-stream")],
         body=lambda: _pattern(3 * MiB + 17), expect_in_body=[b"3145745 "]),
    Case("json_body", "json_body.php", method="PATCH",
         headers=[(b"Content-Type", b"application/json; charset=utf-8")],
         body=b'{"x": "\\u00e9", "n": 1.5}', expect_in_body=[b'"n":1.5']),
    Case("method_put_form", "method.php", method="PUT",
         headers=[(b"Content-Type", _FORM_TYPE)], body=b"a=1&b=2",
         expect_in_body=[b"PUT post=0 input=7"]),
    Case("method_delete", "method.php", method="DELETE",
         expect_in_body=[b"DELETE post=0 input=0"]),
    Case("post_no_content_type", "raw_input.php", method="POST", body=b"a=1&b=2",
         expect_in_body=[b"7 ", b"POST=array (\n)"]),
    Case("method_head", "head.php", method="HEAD", expect_in_body=[]),
    # --- uploads ----------------------------------------------------------
    Case("upload_0b", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)], body=_upload(0),
         expect_in_body=[b"size=0 error=0 uploaded=true md5=" + EMPTY_MD5,
                         b"input=0"]),
    Case("upload_1mib", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)], body=_upload(MiB),
         expect_in_body=[b"size=1048576 error=0 uploaded=true md5=" + ONE_MIB_MD5]),
    Case("upload_50mib_spooled", "upload_report.php", method="POST", body_mode="fd",
         headers=[(b"Content-Type", _MP_TYPE)], body=_upload(50 * MiB),
         expect_in_body=[b"size=52428800 error=0 uploaded=true md5=" + FIFTY_MIB_MD5]),
    Case("upload_utf8_name", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("doc", "r\u00e9sum\u00e9 \u2713 \U0001f600.txt",
                          "text/plain; charset=utf-8", b"contenu")]),
         expect_in_body=["name='r\u00e9sum\u00e9 \u2713 \U0001f600.txt'".encode()]),
    Case("upload_too_many", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)], body=_many_files,
         expect_in_body=[b"f.19: name='f19.txt'"],
         expect_log="Maximum number of allowable file uploads has been exceeded"),
    Case("upload_truncated", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)], body=_truncated,
         expect_in_body=[b"count="]),
    Case("upload_nested_names", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([
             ("form[user][avatar]", "a.png", "image/png", b"\x89PNG\r\n\x1a\n"),
             ("form[user][cv]", "dir/cv.pdf", "application/pdf", b"%PDF-1.4"),
             ("form[user][name]", None, None, b"Ada"),
         ]),
         expect_in_body=[b"form.user.avatar: name='a.png'",
                         b"full_path='dir/cv.pdf'"]),
    Case("upload_path_in_name", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("a", "C:\\fakepath\\win.txt", "text/plain", b"w"),
                         ("b", "../../etc/passwd", "text/plain", b"p"),
                         ("c", "quo\"te.txt", "text/plain", b"q")]),
         expect_in_body=[b"name='win.txt'", b"name='passwd'"]),
    Case("upload_max_file_size", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("MAX_FILE_SIZE", None, None, b"10"),
                         ("big", "big.txt", "text/plain", b"x" * 100),
                         ("small", "small.txt", "text/plain", b"tiny")]),
         expect_in_body=[b"size=0 error=2", b"size=4 error=0"]),
    Case("upload_no_file", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("empty", "", "application/octet-stream", b"")]),
         expect_in_body=[b"error=4"]),
    Case("upload_fields_only", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("a[]", None, None, b"1"), ("a[]", None, None, b"2"),
                         ("t", None, None, "\u00e9\r\nline".encode())]),
         expect_in_body=[b'POST={"a":["1","2"]']),
    Case("upload_move", "upload_move.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)],
         body=multipart([("doc", "m.txt", "text/plain", b"move me")]),
         expect_in_body=[b"moved=true", b"still_there=false foreign=false"]),
    Case("upload_empty_body", "upload_report.php", method="POST",
         headers=[(b"Content-Type", _MP_TYPE)], expect_in_body=[b"count=0"]),
    Case("upload_bad_boundary", "upload_report.php", method="POST",
         headers=[(b"Content-Type", b"multipart/form-data")],
         body=multipart([("a", None, None, b"1")]),
         expect_in_body=[b"count=0"], expect_log="Missing boundary"),
    # --- status and headers ----------------------------------------------
    Case("status_404", "status_404.php", expect_status=404,
         expect_in_body=[b"not here"]),
    Case("status_line", "status_line.php", expect_status=418,
         expect_in_body=[b"stout 418"]),
    Case("status_header", "status_header.php", expect_status=503),
    Case("status_299", "status_weird.php", expect_status=299),
    Case("redirect_302", "redirect_302.php", expect_status=302),
    Case("redirect_301", "redirect_301.php", expect_status=301),
    Case("redirect_201", "redirect_201.php", expect_status=201),
    Case("redirect_exit", "redirect_exit.php", expect_status=303),
    Case("repeated_headers", "repeated_headers.php", expect_in_body=[b"ok"]),
    Case("set_cookies", "set_cookies.php", expect_in_body=[b"cookies"]),
    Case("content_type_json", "content_type_json.php"),
    Case("content_type_text", "content_type_text.php"),
    Case("content_type_none", "content_type_none.php"),
    Case("no_content", "no_content.php", expect_status=204),
    Case("header_injection", "header_injection.php",
         expect_log="Header may not contain more than a single header"),
    Case("long_headers", "long_headers.php", expect_in_body=[b"many"]),
    Case("getallheaders", "getallheaders.php",
         headers=[(b"X-Custom", b"1"), (b"Accept", b"a"), (b"accept", b"b")],
         expect_in_body=[b"exists=true"]),
    Case("headers_list", "headers_list.php", expect_in_body=[b'"sent":false']),
    Case("session_first", "session.php", expect_in_body=[b"n=1"]),
    Case("session_again", "session.php", expect_in_body=[b"n=1"]),
    Case("header_after_big_output", "header_after_big_output.php",
         expect_in_body=[b"sent=true"], expect_log="Cannot modify header information"),
    Case("header_after_small_output", "header_after_small_output.php",
         expect_in_body=[b"sent=false"]),
    # --- output buffering and flushing -------------------------------------
    Case("ob_nested", "ob_nested.php",
         expect_in_body=[b"outer-INNER level=2 done level=1"]),
    Case("ob_callback", "ob_callback.php", expect_in_body=[b"hello WORLD"]),
    Case("ob_discard", "ob_discard.php", expect_in_body=[b"public"]),
    Case("ob_status_after_buffered", "ob_status_after_buffered.php",
         expect_status=409),
    Case("flush", "flush.php", min_sends=2, expect_in_body=[b"second sent=true"],
         expect_log="Cannot modify header information"),
    Case("flush_buffered", "flush_buffered.php",
         expect_in_body=[b"first second sent=false third"]),
    Case("ob_flush_chunks", "ob_flush_chunks.php", min_sends=2,
         expect_in_body=[b"chunk 2\ntail"]),
    Case("php_output_stream", "php_output_stream.php",
         expect_in_body=[b"via stream\nvia print\nvia printf\nvia file_put"]),
    Case("gzip_handler", "gzip_handler.php",
         headers=[(b"Accept-Encoding", b"gzip, deflate")],
         expect_in_body=[b"\x1f\x8b\x08"]),
    Case("gzip_handler_identity", "gzip_handler.php",
         expect_in_body=[b"compressible text\n"]),
    Case("user_content_length", "user_content_length.php",
         expect_in_body=[b"abc"]),
    Case("large_output", "large_output.php"),
    Case("binary_output", "binary_output.php"),
    Case("readfile", "readfile.php", expect_in_body=[b"line two"]),
    # --- exit, exceptions, fatals ------------------------------------------
    Case("exit_string", "exit_string.php", expect_in_body=[b"before done"]),
    Case("exit_code", "exit_code.php", expect_in_body=[b"status stays 200"]),
    Case("exit_in_ob", "exit_in_ob.php", expect_in_body=[b"flushed at exit"]),
    Case("shutdown_function", "shutdown_function.php",
         expect_in_body=[b"body exit-message shutdown-ran"]),
    Case("destructor", "destructor.php", expect_in_body=[b"alive destructed"]),
    Case("exception_uncaught", "exception_uncaught.php", expect_status=500,
         expect_log="askr corpus boom"),
    Case("exception_after_output", "exception_after_output.php", expect_status=500,
         expect_log="askr corpus late boom"),
    Case("exception_handler", "exception_handler.php",
         expect_in_body=[b"handled: DomainException"]),
    Case("fatal_undefined_function", "fatal_undefined_function.php",
         expect_status=500, expect_log="askr_corpus_no_such_function"),
    Case("fatal_memory", "fatal_memory.php", expect_status=500,
         expect_log="Allowed memory size"),
    Case("fatal_user_error", "fatal_user_error.php", expect_status=500,
         expect_log="askr corpus user error"),
    Case("fatal_after_flush", "fatal_after_flush.php", min_sends=2,
         expect_in_body=[b"flushed"], expect_log="askr_corpus_no_such_function"),
    Case("parse_error", "parse_error.php", expect_status=500,
         expect_log="syntax error"),
    Case("timeout", "timeout.php", expect_status=500,
         expect_log="Maximum execution time"),
    Case("warnings", "warnings.php", expect_in_body=[b"default still 200"],
         expect_log="Undefined variable"),
    Case("error_log_call", "error_log_call.php", expect_log="askr corpus error_log"),
    # After the fatals: the process must still serve a clean request.
    Case("after_fatals", "fresh_state.php", expect_in_body=[b"1 1 14"]),
]
