"""environ.build gives what the machine's real nginx + php-fpm give PHP.

Starts nginx (Debian's snippets/fastcgi-php.conf, unchanged) and php-fpm,
both on Unix sockets in a temp dir, sends raw requests, and compares the
$_SERVER that php-fpm shows, key by key and in order, with environ.build
for the same request.  Differences that environ.py documents as deliberate
are left out of the requests or normalised here:

* REMOTE_USER and FCGI_ROLE: not sent by Askr;
* repeated headers (nginx 1.22 keeps the last, Askr joins as nginx 1.23+)
  and absolute-form targets (Askr lets the target's authority win): not sent;
* the four address variables: nginx on a Unix socket has no ports, so only
  their presence and position are compared;
* REQUEST_TIME / REQUEST_TIME_FLOAT: compared by type.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from askr.php import environ

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
SNIPPET = Path("/etc/nginx/snippets/fastcgi-php.conf")
FASTCGI_CONF = Path("/etc/nginx/fastcgi.conf")

DUMP_PHP = """<?php
$out = [];
foreach ($_SERVER as $k => $v) {
    $out[] = [$k, is_string($v) ? base64_encode($v) : gettype($v)];
}
header('Content-Type: application/json');
echo json_encode($out);
"""

ADDRESS_VARS = {b"REMOTE_ADDR", b"REMOTE_PORT", b"SERVER_ADDR", b"SERVER_PORT"}
NOT_SENT_BY_ASKR = {b"REMOTE_USER", b"FCGI_ROLE"}


def _need(path: str | Path, what: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{what} not installed ({path})")


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        if path.exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not create {path} within 10 s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    for path, what in ((NGINX, "nginx"), (FPM, "php-fpm8.2"),
                       (SNIPPET, "nginx snippets/fastcgi-php.conf")):
        _need(path, what)

    tmp = tmp_path_factory.mktemp("nginx-fpm")
    www = tmp / "www"
    www.mkdir()
    (www / "dump.php").write_text(DUMP_PHP)
    shutil.copy(FASTCGI_CONF, tmp / "fastcgi.conf")  # the snippet includes it
    http_sock, fpm_sock = tmp / "http.sock", tmp / "fpm.sock"

    (tmp / "fpm.conf").write_text(
        f"[global]\nerror_log = {tmp}/fpm.log\ndaemonize = no\n"
        f"[www]\nlisten = {fpm_sock}\npm = static\npm.max_children = 1\n"
    )
    (tmp / "nginx.conf").write_text(f"""
daemon off;
master_process off;
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{}}
http {{
  access_log off;
  client_body_temp_path {tmp};
  fastcgi_temp_path {tmp};
  server {{
    listen unix:{http_sock};
    server_name corpus.test;
    root {www};
    location ~ [^/]\\.php(/|$) {{
      include {SNIPPET};
      fastcgi_pass unix:{fpm_sock};
    }}
  }}
}}
""")

    version = subprocess.run(
        [NGINX, "-v"], capture_output=True, text=True, check=True
    ).stderr.strip().rpartition(" ")[2]

    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [FPM, "-R", "-F", "-n", "-y", str(tmp / "fpm.conf"),
             "-d", "register_argc_argv=0", "-d", "variables_order=GPCS"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        _wait_for_socket(fpm_sock, procs[0], "php-fpm")
        procs.append(subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
             "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        _wait_for_socket(http_sock, procs[1], "nginx")
        yield {"sock": http_sock, "www": www, "software": version}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2:]


def _fpm_server_vars(sock: Path, raw_request: bytes) -> list[tuple[bytes, bytes]]:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(10)
        conn.connect(str(sock))
        conn.sendall(raw_request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk

    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")), data[:500]
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return [
        (name.encode(), value.encode() if value in ("double", "integer")
         else base64.b64decode(value))
        for name, value in json.loads(body)
    ]


def _normalise(env: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = []
    for name, value in env:
        if name in NOT_SENT_BY_ASKR:
            continue
        if name in ADDRESS_VARS:
            value = b"(address)"
        elif name == b"REQUEST_TIME_FLOAT":
            value = b"double"
        elif name == b"REQUEST_TIME":
            value = b"integer"
        out.append((name, value))
    return out


class Req(NamedTuple):
    id: str
    method: str
    target: bytes
    protocol: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    script_name: str
    path_info: str


REQUESTS = [
    Req("get_query", "GET", b"/dump.php?x=1&y", "HTTP/1.1",
        [(b"Host", b"Corpus.Test:8080"), (b"User-Agent", b"t/1"),
         (b"Accept", b"*/*"), (b"x-MiXeD-case", b"v"), (b"X-Empty", b"")],
        b"", "/dump.php", ""),
    Req("post_path_info", "POST", b"/dump.php/extra/x?a=1&b", "HTTP/1.1",
        [(b"Host", b"corpus.test"), (b"Cookie", b"a=1; b=2"), (b"X_Under", b"u"),
         (b"Proxy", b"http://evil"), (b"Content-Type", b"text/plain"),
         (b"Content-Length", b"3")],
        b"abc", "/dump.php", "/extra/x"),
    Req("encoded_target", "GET", b"/d%75mp.php/caf%C3%A9%2Fx?q=%41", "HTTP/1.1",
        [(b"Host", b"h")], b"", "/dump.php", "/caf\u00e9/x"),
    Req("http10_no_host", "GET", b"/dump.php", "HTTP/1.0", [], b"", "/dump.php", ""),
    Req("chunked_put", "PUT", b"/dump.php", "HTTP/1.1",
        [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")],
        b"5\r\nhello\r\n0\r\n\r\n", "/dump.php", ""),
]


@pytest.mark.parametrize("req", REQUESTS, ids=[r.id for r in REQUESTS])
def test_environ_matches_nginx_and_php_fpm(stack: dict[str, Any], req: Req) -> None:
    www: Path = stack["www"]
    headers = req.headers + [(b"Connection", b"close")]
    raw = b"%s %s %s\r\n" % (req.method.encode(), req.target, req.protocol.encode())
    raw += b"".join(b"%s: %s\r\n" % h for h in headers) + b"\r\n" + req.body
    chunked = any(n.lower() == b"transfer-encoding" for n, _ in headers)

    fpm = _fpm_server_vars(stack["sock"], raw)
    ours = environ.build(
        method=req.method, target=req.target, protocol=req.protocol,
        headers=headers, client=("unix:", 0), server=("unix:", 0),
        server_name="corpus.test", https=False, document_root=str(www),
        script_name=req.script_name, script_filename=str(www / "dump.php"),
        path_info=req.path_info, request_time=time.time(),
        software=stack["software"], body_length=5 if chunked else None,
    )

    assert _normalise(ours) == _normalise(fpm)
