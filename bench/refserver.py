"""nginx + php-fpm on loopback, with config files of our own.

The reference Askr is measured and compared against.  Both daemons run in
the foreground from a private directory (configs, sockets, pid and log
files, temp paths), never as the system services.  Used by bench/run.py
and by the differential tests in tests/.

php-fpm uses the machine's php.ini and conf.d (so opcache loads as it does
in production) with ``pm = static`` and as many children as Askr has
workers.  nginx runs the stock ``try_files $uri $uri/ /index.php`` front
controller rule with Debian's fastcgi_params, as a Laravel site does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

NGINX_CONF = """\
{user_line}
daemon off;
master_process on;
worker_processes {nginx_workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;

events {{ worker_connections 4096; }}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_max_body_size 200m;
    client_body_temp_path {tmp}/body;
    fastcgi_temp_path {tmp}/fastcgi;
    proxy_temp_path {tmp}/proxy;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    # No upstream keepalive, as Debian's snippets/fastcgi-php.conf: an
    # fpm child bound to one nginx worker's idle kept connection cannot
    # serve another worker's request, which stalls requests for seconds
    # when nginx runs several workers over few children.
    upstream php {{ server unix:{tmp}/fpm.sock; }}

    server {{
        listen {host}:{port} {ssl_flags};
        {ssl_lines}
        server_name localhost;
        root {root};
        index index.php index.html;

        location / {{
            try_files $uri $uri/ /index.php?$query_string;
        }}

        location ~ [^/]\\.php(/|$) {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            try_files $fastcgi_script_name =404;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_index index.php;
            include /etc/nginx/fastcgi.conf;
            fastcgi_pass php;
        }}
    }}
}}
"""

FPM_CONF = """\
[global]
pid = {tmp}/fpm.pid
error_log = {tmp}/fpm.log
daemonize = no

[askr-bench]
listen = {tmp}/fpm.sock
listen.backlog = 4096
listen.mode = 0666
pm = static
pm.max_children = {children}
pm.max_requests = 0
clear_env = yes
catch_workers_output = yes
{extra}
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (small race; fine on loopback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_http(host: str, port: int, path: str = "/", timeout: float = 20.0,
              tls: bool = False) -> None:
    """Poll until the server answers any HTTP status line on ``path``."""
    import http.client
    import ssl

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if tls:
                ctx = ssl._create_unverified_context()
                conn = http.client.HTTPSConnection(host, port, timeout=2,
                                                   context=ctx)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port}{path} not answering: {last}")


def find_fpm() -> str:
    for name in ("php-fpm8.2", "php-fpm", "php-fpm8.3", "php-fpm8.1"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin")
        if path:
            return path
    raise FileNotFoundError("php-fpm not found (Debian: apt install php8.2-fpm)")


class NginxFpm:
    """nginx in front of php-fpm, both in the foreground, on loopback."""

    def __init__(self, root: str | Path, *, children: int = 1,
                 nginx_workers: int = 1, host: str = "127.0.0.1",
                 port: int | None = None, php_ini: dict[str, str] | None = None,
                 cert: str | None = None, key: str | None = None,
                 http2: bool = False) -> None:
        self.root = str(Path(root).resolve())
        self.children = children
        self.nginx_workers = nginx_workers
        self.host = host
        self.port = port or free_port(host)
        self.php_ini = php_ini or {}
        self.cert, self.key, self.http2 = cert, key, http2
        self.tmp = Path(tempfile.mkdtemp(prefix="askr-ref-"))
        self.tmp.chmod(0o755)
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def pids(self) -> list[int]:
        """Every process of both servers (masters and children)."""
        import psutil

        out = []
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                out.append(parent.pid)
                out.extend(c.pid for c in parent.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return out

    def start(self) -> NginxFpm:
        for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            (self.tmp / sub).mkdir()

        extra = "\n".join(f"php_value[{k}] = {v}"
                          for k, v in self.php_ini.items())
        fpm_conf = self.tmp / "php-fpm.conf"
        fpm_conf.write_text(FPM_CONF.format(tmp=self.tmp, extra=extra,
                                            children=self.children))

        ssl_flags, ssl_lines = "", ""
        if self.cert:
            ssl_flags = "ssl http2" if self.http2 else "ssl"
            ssl_lines = (f"ssl_certificate {self.cert};\n"
                         f"        ssl_certificate_key {self.key};\n"
                         "        ssl_protocols TLSv1.2 TLSv1.3;")
        nginx_conf = self.tmp / "nginx.conf"
        nginx_conf.write_text(NGINX_CONF.format(
            tmp=self.tmp, host=self.host, port=self.port, root=self.root,
            nginx_workers=self.nginx_workers, ssl_flags=ssl_flags,
            # As root, nginx's workers would run as nobody and could not
            # read a test's private docroot or php-fpm's socket.
            user_line="user root;" if os.geteuid() == 0 else "",
            ssl_lines=ssl_lines))

        # php-fpm refuses to run as root without -R; the pool then runs
        # as root too, which is what the test machine is.
        fpm_cmd = [find_fpm(), "-F", "-y", str(fpm_conf)]
        if os.geteuid() == 0:
            fpm_cmd.insert(1, "-R")
        self.procs.append(self._spawn(fpm_cmd, "fpm.out"))
        self._wait_socket(self.tmp / "fpm.sock")

        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.procs.append(self._spawn(
            [nginx, "-c", str(nginx_conf), "-e", str(self.tmp / "nginx-error.log")],
            "nginx.out"))
        wait_http(self.host, self.port, "/__askr_probe__.txt",
                  tls=bool(self.cert))
        return self

    def _spawn(self, cmd: list[str], out: str) -> subprocess.Popen:
        log = open(self.tmp / out, "wb")  # noqa: SIM115 - lives as long as the server
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def _wait_socket(self, path: Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                log = (self.tmp / "fpm.log").read_text(errors="replace") \
                    if (self.tmp / "fpm.log").exists() else ""
                raise RuntimeError(f"php-fpm did not start: {log[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGQUIT)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
