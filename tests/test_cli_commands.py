"""The askr command line: serve's flag overrides, config-check, cert, reload."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from askr import __version__, cli, config, errors
from askr.config import Address

ROOT = Path(__file__).parent.parent
CONFIGS = Path(__file__).parent / "configs"


@pytest.fixture
def fake_serve(monkeypatch):
    """Stand-in for askr.serve: records the Config serve() would run."""
    seen: list[config.Config] = []
    module = types.ModuleType("askr.serve")

    def run(cfg: config.Config) -> int:
        seen.append(cfg)
        return 17

    module.run = run
    monkeypatch.setitem(sys.modules, "askr.serve", module)
    return seen


def run_askr(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "askr.cli", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_cli_serve_flags_override_the_file(fake_serve):
    code = cli.main(["serve", "--config", str(CONFIGS / "good-classic.toml"),
                     "--workers", "3", "--listen", "127.0.0.1:0",
                     "--listen", "[::1]:0", "--io", "epoll",
                     "--max-body-size", "1M", "--no-access-log", "--canary",
                     "--admin-listen", "127.0.0.1:0", "--log-level", "debug"])

    cfg = fake_serve[0]
    assert code == 17
    assert cfg.server.workers == 3
    assert cfg.server.listen == (Address("127.0.0.1", 0), Address("::1", 0))
    assert cfg.server.io == "epoll"
    assert cfg.server.max_body_size == 1 << 20
    assert cfg.log.access is False
    assert cfg.reload.canary is True
    assert cfg.log.level == "debug"
    assert cfg.server.root == str(CONFIGS / "www")


def test_cli_serve_without_arguments_serves_the_demo(fake_serve):
    assert config.DEMO_CONFIG.exists()

    assert cli.main(["serve"]) == 17
    assert fake_serve[0].path == str(config.DEMO_CONFIG)
    assert fake_serve[0].mode == "worker"


def test_cli_serve_bad_flag_value_exits_config_invalid(fake_serve, capsys):
    code = cli.main(["serve", "--workers", "0"])

    assert code == errors.CONFIG_INVALID
    assert fake_serve == []
    assert "(--workers): expected" in capsys.readouterr().err


def test_cli_halt_server_becomes_the_exit_code(monkeypatch, capsys):
    module = types.ModuleType("askr.serve")

    def run(cfg):
        raise errors.HaltServer("php init failed", errors.PHP_INIT_FAILED)

    module.run = run
    monkeypatch.setitem(sys.modules, "askr.serve", module)

    assert cli.main(["serve", "--workers", "1"]) == errors.PHP_INIT_FAILED
    assert "php init failed" in capsys.readouterr().err


def test_cli_config_check_good_file_exits_zero():
    res = run_askr("config-check", str(CONFIGS / "good-worker.toml"), "--show")

    assert res.returncode == 0, res.stderr
    assert "server.io = epoll" in res.stdout
    assert res.stdout.strip().splitlines()[-1].startswith(
        f"{CONFIGS / 'good-worker.toml'}: OK, worker mode")


def test_cli_config_check_lists_every_problem(tmp_path):
    bad = tmp_path / "askr.toml"
    bad.write_text('[server]\nworkers = 0\nio = "kqueue"\n[log]\nlevl = "x"\n')

    res = run_askr("config-check", str(bad))

    assert res.returncode == errors.CONFIG_INVALID
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f'{bad}:5: [log] levl: unknown key (did you mean "level"?)',
        f'{bad}:2: [server] workers: expected "auto" or an integer from 1 to 1024, got 0',
        (f'{bad}:3: [server] io: expected one of "auto", "uring", "epoll", '
        "got 'kqueue'"),
    ]


def test_cli_cert_makes_a_pair_a_tls_client_accepts(tmp_path):
    res = run_askr("cert", "--out", str(tmp_path), "localhost", "127.0.0.1")
    assert res.returncode == 0, res.stderr

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    a, b = socket.socketpair()
    errors_seen: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                s.sendall(s.recv(5))
        except (OSError, ssl.SSLError) as exc:
            errors_seen.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        b.settimeout(10)
        with client_ctx.wrap_socket(b, server_hostname="localhost") as c:
            c.sendall(b"hello")
            assert c.recv(5) == b"hello"
    finally:
        t.join(10)
    assert errors_seen == []


class _AdminHandler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.seen.append((self.command, self.path))
        body = json.dumps({"accepted": True}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_cli_reload_posts_to_the_admin_api(capsys):
    server = HTTPServer(("127.0.0.1", 0), _AdminHandler)
    t = threading.Thread(target=server.handle_request)
    t.start()
    try:
        port = server.server_address[1]
        code = cli.main(["reload", "--admin", f"127.0.0.1:{port}", "--canary"])
    finally:
        t.join(10)
        server.server_close()

    assert code == 0
    assert _AdminHandler.seen == [("POST", "/api/reload?canary=1")]
    assert json.loads(capsys.readouterr().out) == {"accepted": True}


def test_cli_reload_without_a_server_fails_clearly(capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    assert cli.main(["reload", "--admin", f"127.0.0.1:{port}"]) == 1
    assert "cannot reach the admin API" in capsys.readouterr().err


def test_cli_version(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"askr {__version__}"
