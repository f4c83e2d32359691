"""Classic mode (one script per request) through the embedded PHP bridge.

PHP lives once per process and some of these requests end in fatal errors,
so the bridge runs in a child process (tests/php/bridge_runner.py) shared by
the whole module: a fatal that harmed the interpreter would show up as a
failure of the *next* request, which several tests check on purpose.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "php"))

from bridge_client import (
    Runner,
    body_of,
    headers_of,
    multipart,
    status_of,
)

INI = """\
zend_extension=opcache.so
opcache.enable=1
opcache.validate_timestamps=0
upload_max_filesize=1M
max_file_uploads=3
post_max_size=4M
expose_php=1
"""


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def php(upload_dir):
    r = Runner(INI + f"upload_tmp_dir={upload_dir}\n")
    try:
        yield r
    finally:
        r.close()


def log_text(answer: dict) -> str:
    return "\n".join(m for _, m in answer["logs"])


def assert_healthy(php: Runner) -> None:
    a = php.run("hello.php")
    assert status_of(a) == 200
    assert body_of(a) == "Hello, world!"


def test_hello_world_is_one_send(php):
    a = php.run("hello.php")
    assert len(a["sends"]) == 1
    status, headers, data, last = a["sends"][0]
    assert (status, data, last) == (200, "Hello, world!", True)
    assert "X-Powered-By: PHP/" + php.info["info"]["version"] in headers
    assert "Content-type: text/html; charset=UTF-8" in headers


def test_sapi_name_is_askr(php):
    d = json.loads(body_of(php.run("dump.php")))
    assert d["sapi"] == "askr"
    assert d["const"] == "askr"


def test_server_vars_come_from_env(php):
    a = php.run("dump.php", query="a=1&b[]=2", headers={"X-Token": "tok-123"})
    d = json.loads(body_of(a))
    s = d["server"]
    assert s["REQUEST_METHOD"] == "GET"
    assert s["QUERY_STRING"] == "a=1&b[]=2"
    assert s["HTTP_X_TOKEN"] == "tok-123"
    assert s["REMOTE_ADDR"] == "127.0.0.1"
    assert s["SCRIPT_FILENAME"].endswith("tests/php/dump.php")
    assert s["PHP_SELF"] == "/dump.php"
    assert isinstance(s["REQUEST_TIME_FLOAT"], float)
    assert d["get"] == {"a": "1", "b": ["2"]}
    assert d["getenv"] == "tok-123"


def test_post_urlencoded_and_cookies(php):
    a = php.run(
        "dump.php",
        query="q=get",
        method="POST",
        body="x=1&y=%C3%A9",
        headers={"Cookie": "sid=abc; theme=dark"},
    )
    d = json.loads(body_of(a))
    assert d["post"] == {"x": "1", "y": "é"}
    assert d["cookie"] == {"sid": "abc", "theme": "dark"}
    # no request_order in the ini: PHP's built-in variables_order (EGPCS) rules
    assert d["request"] == {
        "q": "get",
        "x": "1",
        "y": "é",
        "sid": "abc",
        "theme": "dark",
    }
    assert d["input"] == "x=1&y=%C3%A9"


def test_raw_body_from_memory_then_fd(php, tmp_path):
    spool = tmp_path / "spool"
    spool.write_bytes(b'"tail"}')
    a = php.run(
        "dump.php",
        method="POST",
        body='{"head":',
        body_file=str(spool),
        content_type="application/json",
    )
    d = json.loads(body_of(a))
    assert d["input"] == '{"head":"tail"}'
    assert d["post"] == []


def test_multipart_upload_and_temp_file_removed(php):
    body, ctype = multipart({"title": "hi"}, {"doc": ("a.txt", "file-content-42")})
    a = php.run("dump.php", method="POST", body=body, content_type=ctype)
    text = body_of(a)
    d = json.loads(text[text.index("{") :])
    assert d["post"] == {"title": "hi"}
    f = d["files"]["doc"]
    assert f["name"] == "a.txt"
    assert f["content"] == "file-content-42"
    assert f["is_uploaded"] is True
    assert f["error"] == 0
    assert not os.path.exists(f["tmp_name"])


def test_upload_limits_are_honoured(php):
    big = "y" * (1024 * 1024 + 10)
    body, ctype = multipart({}, {"big": ("big.bin", big)})
    text = body_of(php.run("dump.php", method="POST", body=body, content_type=ctype))
    d = json.loads(text[text.index("{") :])
    assert d["files"]["big"]["error"] == 1  # UPLOAD_ERR_INI_SIZE

    files = {f"f{i}": (f"{i}.txt", "x") for i in range(5)}
    body, ctype = multipart({}, files)
    a = php.run("dump.php", method="POST", body=body, content_type=ctype)
    text = body_of(a)
    d = json.loads(text[text.index("{") :])
    assert len(d["files"]) == 3
    assert "Maximum number of allowable file uploads" in log_text(a)


def test_multipart_upload_spooled_to_an_fd(php, tmp_path):
    content = "z" * 300_000
    body, ctype = multipart({"title": "big"}, {"doc": ("big.txt", content)})
    spool = tmp_path / "spool"
    head = body[:1000]
    spool.write_bytes(body[1000:].encode("latin-1"))
    a = php.run(
        "dump.php", method="POST", body=head, body_file=str(spool), content_type=ctype
    )
    text = body_of(a)
    d = json.loads(text[text.index("{") :])
    assert d["post"] == {"title": "big"}
    assert d["files"]["doc"]["size"] == 300_000
    assert d["files"]["doc"]["content"] == content


def test_build_info_describes_the_php(php):
    info = php.info["info"]
    assert info["version"].startswith("8.")
    assert info["version_id"] >= 80200
    assert info["zts"] is False
    assert info["sapi"] == "askr"
    assert os.path.isdir(info["extension_dir"])


def test_headers_in_order_with_repeats_and_remove(php):
    a = php.run("headers.php")
    h = headers_of(a)
    assert h.index("X-One: 1") < h.index("Set-Cookie: a=1") < h.index("Set-Cookie: b=2")
    assert "Set-Cookie: c=3" in h
    assert not any(x.startswith("X-Gone") for x in h)
    assert body_of(a) == "not-sent,sent"


@pytest.mark.parametrize(
    ("mode", "status"), [("", 200), ("status", 418), ("line", 404), ("location", 302)]
)
def test_status_codes(php, mode, status):
    a = php.run("headers.php", query=f"mode={mode}")
    assert status_of(a) == status
    if mode == "location":
        assert "Location: /elsewhere" in headers_of(a)


def test_status_not_carried_to_next_request(php):
    assert status_of(php.run("headers.php", query="mode=status")) == 418
    assert status_of(php.run("hello.php")) == 200


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("exception", "boom-exception"),
        ("user_error", "boom-user-error"),
        ("undefined", "askr_no_such_function"),
    ],
)
def test_fatal_is_500_and_next_request_fine(php, what, needle):
    a = php.run("errors.php", query=f"what={what}")
    assert status_of(a) == 500
    assert a["sends"][-1][3] is True
    assert "end" not in body_of(a)
    assert needle in log_text(a)
    assert needle not in body_of(a)
    assert_healthy(php)


def test_warning_goes_to_log_not_response(php):
    a = php.run("errors.php", query="what=warning")
    assert status_of(a) == 200
    assert body_of(a) == "before;after-warningend"
    assert any(lv == 30 and "just-a-warning" in m for lv, m in a["logs"])


def test_display_errors_puts_them_in_the_response(php):
    runner = Runner("display_errors=1\nhtml_errors=0")
    try:
        a = runner.run("errors.php", query="what=warning")
        assert "just-a-warning" in body_of(a)
    finally:
        runner.close()


def test_exit_ends_request_normally(php):
    a = php.run("errors.php", query="what=exit")
    assert status_of(a) == 202
    assert body_of(a) == "before;buffered;bye"
    assert_healthy(php)


def test_stdout_and_stderr_go_to_log(php):
    a = php.run("errors.php", query="what=stderr")
    assert body_of(a) == "before;visibleend"
    logs = log_text(a)
    assert "line-to-stderr" in logs
    assert "line-to-stdout" in logs
    assert "wrapper-stderr" in logs


def test_flush_makes_more_than_one_send(php):
    a = php.run("stream.php", query="mode=flush")
    sends = a["sends"]
    assert len(sends) == 2
    assert sends[0][1] is not None and sends[1][1] is None
    assert [s[2] for s in sends] == ["first", "second"]
    assert [s[3] for s in sends] == [False, True]


def test_big_output_is_streamed_in_chunks(php):
    a = php.run("stream.php", query="mode=big")
    assert len(a["sends"]) >= 3
    assert body_of(a) == "x" * 200000
    assert [s[3] for s in a["sends"]].count(True) == 1


def test_fastcgi_finish_request(php, tmp_path):
    marker = tmp_path / "after"
    a = php.run("stream.php", query=f"mode=finish&marker={marker}")
    assert body_of(a) == "answered"
    # Complete while the script runs on: the server writes it at once.
    assert [s[3] for s in a["sends"]] == ["early"]
    assert marker.read_text() == "ran-after-finish"


def test_client_gone_stops_script_unless_ignore_user_abort(php, tmp_path):
    marker = tmp_path / "m"
    a = php.run("stream.php", query=f"mode=abort&marker={marker}", abort_after=2)
    assert not marker.exists()
    assert a["sends"][-1][3] is True
    php.run("stream.php", query=f"mode=abort&ignore=1&marker={marker}", abort_after=2)
    assert marker.read_text() == "aborted=1"


def test_memory_limit_is_enforced_and_logged(php):
    a = php.run("errors.php", query="what=memory")
    assert status_of(a) == 500
    assert "Allowed memory size of 8388608 bytes exhausted" in log_text(a)
    assert "errors.php" in log_text(a)
    assert_healthy(php)


def test_max_execution_time_is_enforced_and_logged(php):
    a = php.run("errors.php", query="what=cpu")
    assert status_of(a) == 500
    assert "Maximum execution time of 1 second exceeded" in log_text(a)
    assert "errors.php" in log_text(a)
    assert_healthy(php)


def test_request_timeout_gives_504():
    php = Runner(INI, timeout=0.5)
    try:
        a = php.run("errors.php", query="what=sleep")
        assert status_of(a) == 504
        assert "woke" not in body_of(a)
        logs = log_text(a)
        assert "wall-clock limit of 0.5s exceeded" in logs
        assert "errors.php" in logs
        assert_healthy(php)
    finally:
        php.close()


def test_head_request_has_headers_but_no_body(php):
    a = php.run("headers.php", method="HEAD")
    assert len(a["sends"]) == 1
    assert status_of(a) == 200
    assert "X-One: 1" in headers_of(a)
    assert body_of(a) == ""


def test_missing_script_is_404(php):
    a = php.run("no-such-script.php")
    assert status_of(a) == 404
    assert body_of(a) == "No input file specified.\n"


def test_opcache_hits_after_repeated_requests(php):
    for _ in range(3):
        assert_healthy(php)
    d = json.loads(body_of(php.run("opcache.php")))
    assert d["enabled"] is True
    assert d["hits"] >= 2


def test_no_php_ini_by_default(php):
    d = json.loads(body_of(php.run("ini.php")))
    assert d["loaded_file"] is False
    assert d["mbstring"] is False  # only what the ini text loads
    assert d["opcache"] is True


@pytest.mark.skipif(
    not os.path.isdir("/etc/php/8.2/embed/conf.d"), reason="needs Debian's embed conf"
)
def test_system_php_ini_loads_distro_extensions():
    runner = Runner("askr.php_ini = system\nmemory_limit=77M\n")
    try:
        d = json.loads(body_of(runner.run("ini.php")))
    finally:
        runner.close()
    assert d["loaded_file"] == "/etc/php/8.2/embed/php.ini"
    assert d["mbstring"] is True
    assert d["memory_limit"] == "77M"  # the ini text wins over php.ini


def test_sigterm_sets_the_flag_askr_should_stop_reads():
    runner = Runner("extension=posix.so\n")
    try:
        assert runner.call({"op": "stop_requested"})["stop_requested"] is False
        runner.call({"op": "install_stop"})
        a = runner.run("stoppable.php")
        assert runner.call({"op": "stop_requested"})["stop_requested"] is True
    finally:
        runner.close()
    assert body_of(a) == "stopped after 4"


def test_php_config_zts_or_missing_gives_clear_error(tmp_path):
    from askr.php import _build

    fake = tmp_path / "php-config"
    fake.write_text(
        "#!/bin/sh\ncase $1 in --configure-options) echo --enable-zts;;"
        " --include-dir) echo /usr/include/php/20220829;; *) echo;; esac\n"
    )
    fake.chmod(0o755)
    os.environ["ASKR_PHP_CONFIG"] = str(fake)
    try:
        with pytest.raises(_build.PHPBuildError, match="ZTS.*libphp8.2-embed"):
            _build.make_ffi()
        os.environ["ASKR_PHP_CONFIG"] = str(tmp_path / "missing-php-config")
        with pytest.raises(_build.PHPBuildError, match="php8.2-dev"):
            _build.make_ffi()
    finally:
        del os.environ["ASKR_PHP_CONFIG"]


def test_upload_dir_is_empty_after_all_requests(php, upload_dir):
    body, ctype = multipart({}, {"a": ("a.txt", "x"), "b": ("b.txt", "y")})
    a = php.run("dump.php", method="POST", body=body, content_type=ctype)
    assert body_of(a).count("TMP:" + str(upload_dir)) == 2
    assert list(upload_dir.iterdir()) == []
