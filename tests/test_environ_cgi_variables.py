"""$_SERVER construction: the variables nginx + php-fpm would give PHP."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from askr.php import environ


def _build(**overrides: object) -> list[tuple[bytes, bytes]]:
    args: dict[str, object] = {
        "method": "GET",
        "target": b"/index.php?x=1",
        "protocol": "HTTP/1.1",
        "headers": [(b"Host", b"example.test:8080")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "server_name": "example.test",
        "https": False,
        "document_root": "/srv/app/public",
        "script_name": "/index.php",
        "script_filename": "/srv/app/public/index.php",
        "path_info": "",
    }
    args.update(overrides)
    return environ.build(**args)  # type: ignore[arg-type]


def _as_dict(env: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    names = [name for name, _ in env]
    assert len(names) == len(set(names)), "a variable is emitted twice"
    return dict(env)


def test_environ_simple_get_in_php_fpm_order() -> None:
    env = _build(
        software="nginx/1.22.1",
        headers=[(b"Host", b"example.test:8080"), (b"Accept", b"*/*")],
    )

    assert env == [
        (b"HTTP_ACCEPT", b"*/*"),
        (b"HTTP_HOST", b"example.test:8080"),
        (b"REDIRECT_STATUS", b"200"),
        (b"SERVER_NAME", b"example.test"),
        (b"SERVER_PORT", b"8080"),
        (b"SERVER_ADDR", b"127.0.0.1"),
        (b"REMOTE_PORT", b"40000"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"SERVER_SOFTWARE", b"nginx/1.22.1"),
        (b"GATEWAY_INTERFACE", b"CGI/1.1"),
        (b"REQUEST_SCHEME", b"http"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"DOCUMENT_ROOT", b"/srv/app/public"),
        (b"DOCUMENT_URI", b"/index.php"),
        (b"REQUEST_URI", b"/index.php?x=1"),
        (b"SCRIPT_NAME", b"/index.php"),
        (b"CONTENT_LENGTH", b""),
        (b"CONTENT_TYPE", b""),
        (b"REQUEST_METHOD", b"GET"),
        (b"QUERY_STRING", b"x=1"),
        (b"SCRIPT_FILENAME", b"/srv/app/public/index.php"),
        (b"PATH_INFO", b""),
        (b"PHP_SELF", b"/index.php"),
    ]


def test_environ_default_software_names_askr_and_its_version() -> None:
    from askr import __version__

    env = _as_dict(_build())

    assert env[b"SERVER_SOFTWARE"] == b"Askr/" + __version__.encode()


def test_environ_path_info_split_gives_php_self_and_document_uri() -> None:
    env = _as_dict(_build(
        target=b"/index.php/extra?x=1", script_name="/index.php", path_info="/extra",
    ))

    assert env[b"SCRIPT_NAME"] == b"/index.php"
    assert env[b"PATH_INFO"] == b"/extra"
    assert env[b"PHP_SELF"] == b"/index.php/extra"
    assert env[b"DOCUMENT_URI"] == b"/index.php"
    assert env[b"REQUEST_URI"] == b"/index.php/extra?x=1"
    assert env[b"QUERY_STRING"] == b"x=1"


def test_environ_front_controller_keeps_the_original_request_uri() -> None:
    env = _as_dict(_build(target=b"/users/5/edit?tab=2"))

    assert env[b"REQUEST_URI"] == b"/users/5/edit?tab=2"
    assert env[b"SCRIPT_NAME"] == b"/index.php"
    assert env[b"PHP_SELF"] == b"/index.php"
    assert env[b"DOCUMENT_URI"] == b"/index.php"
    assert env[b"QUERY_STRING"] == b"tab=2"


def test_environ_request_uri_and_query_are_raw_bytes() -> None:
    target = b"/caf%C3%A9//./x%2Fy?q=%20a+b&z=\xff?still-query#frag"

    env = _as_dict(_build(target=target))

    assert env[b"REQUEST_URI"] == target
    assert env[b"QUERY_STRING"] == b"q=%20a+b&z=\xff?still-query#frag"


def test_environ_no_question_mark_gives_empty_query_string() -> None:
    env = _as_dict(_build(target=b"/index.php"))

    assert env[b"QUERY_STRING"] == b""


def test_environ_absolute_form_target_uses_its_authority_for_http_host() -> None:
    env = _as_dict(_build(
        target=b"http://real.test:81/index.php?a=1",
        headers=[(b"Host", b"spoofed.test")],
    ))

    assert env[b"REQUEST_URI"] == b"/index.php?a=1"
    assert env[b"QUERY_STRING"] == b"a=1"
    assert env[b"HTTP_HOST"] == b"real.test:81"


def test_environ_absolute_form_without_path_gets_slash() -> None:
    env = _as_dict(_build(target=b"https://real.test?a=1", headers=[]))

    assert env[b"REQUEST_URI"] == b"/?a=1"
    assert env[b"HTTP_HOST"] == b"real.test"


def test_environ_absolute_form_drops_userinfo_and_keeps_asterisk() -> None:
    with_user = _as_dict(_build(target=b"http://u:pw@real.test/i.php", headers=[]))
    asterisk = _as_dict(_build(method="OPTIONS", target=b"*"))

    assert with_user[b"HTTP_HOST"] == b"real.test"
    assert with_user[b"REQUEST_URI"] == b"/i.php"
    assert asterisk[b"REQUEST_URI"] == b"*"
    assert asterisk[b"QUERY_STRING"] == b""


def test_environ_host_header_keeps_its_port_and_is_absent_without_host() -> None:
    with_port = _as_dict(_build(headers=[(b"host", b"Example.test:8443")]))
    without = _as_dict(_build(headers=[], protocol="HTTP/1.0"))

    assert with_port[b"HTTP_HOST"] == b"Example.test:8443"
    assert b"HTTP_HOST" not in without
    assert without[b"SERVER_PROTOCOL"] == b"HTTP/1.0"


def test_environ_header_names_are_upper_cased_with_underscores() -> None:
    env = _as_dict(_build(headers=[
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"Accept-Language", b"en"),
        (b"DNT", b"1"),
    ]))

    assert env[b"HTTP_X_FORWARDED_FOR"] == b"10.0.0.1"
    assert env[b"HTTP_ACCEPT_LANGUAGE"] == b"en"
    assert env[b"HTTP_DNT"] == b"1"


def test_environ_headers_come_first_last_header_first_like_php_fpm() -> None:
    env = _build(headers=[
        (b"B-First", b"1"), (b"A-Second", b"2"), (b"b-first", b"3"),
    ])
    names = [name for name, _ in env]

    assert names[:2] == [b"HTTP_A_SECOND", b"HTTP_B_FIRST"]
    assert names[2] == b"REDIRECT_STATUS"
    assert dict(env)[b"HTTP_B_FIRST"] == b"1, 3"


def test_environ_headers_with_underscores_or_odd_bytes_are_dropped() -> None:
    env = _as_dict(_build(headers=[
        (b"X-Real-IP", b"good"),
        (b"X_Real_IP", b"shadow"),
        (b"X.Dotted", b"x"),
        (b":authority", b"h2-pseudo"),
        (b"X-Caf\xc3\xa9", b"x"),
        (b"", b"empty-name"),
    ]))

    http = {name: value for name, value in env.items() if name.startswith(b"HTTP_")}
    assert http == {b"HTTP_X_REAL_IP": b"good"}


def test_environ_proxy_header_never_becomes_http_proxy() -> None:
    env = _as_dict(_build(headers=[(b"Proxy", b"http://evil:1"), (b"proxy", b"x")]))

    assert b"HTTP_PROXY" not in env


def test_environ_repeated_headers_are_joined_with_comma() -> None:
    env = _as_dict(_build(headers=[
        (b"Accept", b"text/html"),
        (b"X-Trace", b"a"),
        (b"accept", b"application/json"),
        (b"X-Trace", b""),
    ]))

    assert env[b"HTTP_ACCEPT"] == b"text/html, application/json"
    assert env[b"HTTP_X_TRACE"] == b"a, "


def test_environ_repeated_cookie_headers_are_joined_with_semicolon() -> None:
    env = _as_dict(_build(headers=[
        (b"cookie", b"a=1"), (b"cookie", b"b=2; c=3"), (b"Cookie", b"d=4"),
    ]))

    assert env[b"HTTP_COOKIE"] == b"a=1; b=2; c=3; d=4"


def test_environ_content_headers_are_empty_strings_when_absent() -> None:
    env = _as_dict(_build())

    assert env[b"CONTENT_TYPE"] == b""
    assert env[b"CONTENT_LENGTH"] == b""
    assert b"HTTP_CONTENT_TYPE" not in env
    assert b"HTTP_CONTENT_LENGTH" not in env


def test_environ_content_headers_are_passed_twice_like_nginx() -> None:
    env = _as_dict(_build(method="POST", headers=[
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"Content-Length", b"11"),
    ]))

    assert env[b"REQUEST_METHOD"] == b"POST"
    assert env[b"CONTENT_TYPE"] == b"application/x-www-form-urlencoded"
    assert env[b"CONTENT_LENGTH"] == b"11"
    assert env[b"HTTP_CONTENT_TYPE"] == b"application/x-www-form-urlencoded"
    assert env[b"HTTP_CONTENT_LENGTH"] == b"11"


def test_environ_chunked_body_length_becomes_content_length() -> None:
    env = _as_dict(_build(
        method="PUT",
        headers=[(b"Transfer-Encoding", b"chunked")],
        body_length=4096,
    ))

    assert env[b"CONTENT_LENGTH"] == b"4096"
    assert env[b"HTTP_TRANSFER_ENCODING"] == b"chunked"
    assert b"HTTP_CONTENT_LENGTH" not in env


def test_environ_content_length_header_wins_over_body_length() -> None:
    env = _as_dict(_build(headers=[(b"Content-Length", b"5")], body_length=9))

    assert env[b"CONTENT_LENGTH"] == b"5"


def test_environ_https_is_on_only_for_tls() -> None:
    plain = _as_dict(_build(https=False))
    tls = _as_dict(_build(https=True, server=("::1", 443)))

    assert b"HTTPS" not in plain
    assert plain[b"REQUEST_SCHEME"] == b"http"
    assert tls[b"HTTPS"] == b"on"
    assert tls[b"REQUEST_SCHEME"] == b"https"
    assert tls[b"SERVER_ADDR"] == b"::1"
    assert tls[b"SERVER_PORT"] == b"443"


def test_environ_ipv6_client_has_no_brackets() -> None:
    env = _as_dict(_build(client=("2001:db8::7", 5555)))

    assert env[b"REMOTE_ADDR"] == b"2001:db8::7"
    assert env[b"REMOTE_PORT"] == b"5555"


def test_environ_remote_user_is_never_sent() -> None:
    env = _as_dict(_build(headers=[(b"Authorization", b"Basic dXNlcjpwdw==")]))

    assert b"REMOTE_USER" not in env
    assert env[b"HTTP_AUTHORIZATION"] == b"Basic dXNlcjpwdw=="


def test_environ_request_time_absent_unless_given_then_last() -> None:
    without = _build()
    with_time = _build(request_time=1700000000.25)

    assert not any(name.startswith(b"REQUEST_TIME") for name, _ in without)
    assert with_time[-2:] == [
        (b"REQUEST_TIME_FLOAT", b"1700000000.250000"),
        (b"REQUEST_TIME", b"1700000000"),
    ]


def test_environ_surrogate_escaped_paths_round_trip_to_original_bytes() -> None:
    raw = b"/caf\xe9.php"
    script = raw.decode("utf-8", "surrogateescape")

    env = _as_dict(_build(
        script_name=script,
        script_filename="/srv/app/public" + script,
        path_info="/\u00e9t\u00e9",
    ))

    assert env[b"SCRIPT_NAME"] == raw
    assert env[b"SCRIPT_FILENAME"] == b"/srv/app/public" + raw
    assert env[b"PATH_INFO"] == "/\u00e9t\u00e9".encode()
    assert env[b"PHP_SELF"] == raw + "/\u00e9t\u00e9".encode()


def test_environ_other_methods_pass_through() -> None:
    env = _as_dict(_build(method="PROPFIND"))

    assert env[b"REQUEST_METHOD"] == b"PROPFIND"


def test_environ_name_cache_stops_growing_at_its_bound() -> None:
    headers = [(b"X-Rand-%d" % i, b"v") for i in range(environ._CACHE_MAX + 50)]

    env = _as_dict(_build(headers=headers))

    assert len(environ._KEY_CACHE) <= environ._CACHE_MAX
    assert env[b"HTTP_X_RAND_%d" % (environ._CACHE_MAX + 49)] == b"v"


_NAME_BYTES = st.binary(min_size=0, max_size=12) | st.text(
    alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12,
).map(str.encode)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_NAME_BYTES, st.binary(max_size=8)), max_size=12))
def test_environ_any_headers_give_unique_well_formed_names(
    headers: list[tuple[bytes, bytes]],
) -> None:
    env = _build(headers=headers)
    names = [name for name, _ in env]

    assert len(names) == len(set(names))
    for name in names:
        assert name.translate(None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == b""
    assert b"HTTP_PROXY" not in names
    kept = {
        b"HTTP_" + n.upper().replace(b"-", b"_")
        for n, _ in headers
        if n and n.translate(None, environ._INVALID_NAME_BYTES) == n
    } - {b"HTTP_PROXY"}
    assert {n for n in names if n.startswith(b"HTTP_")} == kept
