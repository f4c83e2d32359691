"""The demo Laravel app answers every route correctly in classic mode.

Runs ``php -S`` (one framework boot per request, through public/index.php)
on a throwaway copy of examples/laravel-app; Askr is not involved.  This is
the reference behaviour the worker-mode and Askr tests compare against.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import laravel_harness as lh  # tests/php_stubs, on sys.path by conftest
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("php") is None
    or not Path("/usr/share/php/Illuminate/autoload.php").exists(),
    reason="needs php-cli and Debian's php-laravel-framework",
)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    return lh.make_app_copy(tmp_path_factory.mktemp("laravel-routes"))


@pytest.fixture(scope="module")
def server(app):
    srv = lh.CliServer(app)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server):
    return lh.Client(server)


def test_text_is_plain_text(client):
    resp = client.get("/text")
    assert resp.status == 200
    assert resp.header("Content-Type").startswith("text/plain")
    assert resp.body == "Hello from Laravel on Askr"


def test_json_echoes_query(client):
    resp = client.get("/json?a=1&b=two")
    assert resp.status == 200
    data = resp.json()
    assert data["message"] == "hello"
    assert data["framework"].startswith("8.")
    assert data["query"] == {"a": "1", "b": "two"}


def test_db_reads_seeded_rows(client):
    data = client.get("/db").json()
    assert data["count"] == 8
    assert data["total"] == 120 + 250 + 480 + 330 + 290 + 410 + 360 + 720
    assert [item["name"] for item in data["items"]][:2] == ["apple", "bread"]


def test_blade_renders_loop(client):
    resp = client.get("/blade")
    assert resp.status == 200
    assert resp.header("Content-Type").startswith("text/html")
    assert resp.body.count("<li ") == 8
    assert "1. apple: 120" in resp.body and "8. honey: 720" in resp.body


def test_session_counter_per_client(server):
    one, two = lh.Client(server), lh.Client(server)
    first, second = one.get("/session").json(), one.get("/session").json()
    assert (first["counter"], second["counter"]) == (1, 2)
    assert first["session_id"] == second["session_id"]
    other = two.get("/session").json()
    assert other["counter"] == 1
    assert other["session_id"] != first["session_id"]


def test_upload_reports_name_size_and_digest(client):
    payload = bytes(range(256)) * 300
    boundary = "askrboundary7"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = client.post("/upload", headers=headers, body=body)
    assert resp.status == 200, resp.body[:300]
    assert resp.json() == {"name": "blob.bin", "size": len(payload),
                           "sha256": hashlib.sha256(payload).hexdigest()}


def test_form_requires_csrf_token(client):
    assert client.post("/form", {"name": "x"}).status == 419
    token = client.csrf_token()
    resp = client.post("/form", {"_token": token, "name": "alice"})
    assert resp.status == 200
    assert resp.json() == {"ok": True, "name": "alice"}


def test_login_and_me(server):
    user, guest = lh.Client(server), lh.Client(server)
    assert user.get("/me").json() == {"user": None, "guest": True}
    assert user.login("demo@example.com", "wrong").status == 401
    resp = user.login("demo@example.com")
    assert resp.status == 200 and resp.json()["user"] == "demo@example.com"
    assert user.get("/me").json()["user"] == "demo@example.com"
    assert guest.get("/me").json()["guest"] is True


def test_throw_gives_500_then_app_recovers(client):
    resp = client.get("/throw")
    assert resp.status == 500
    assert "Deliberate failure" not in resp.body  # APP_DEBUG=false
    assert client.get("/text").status == 200


def test_dispatch_queues_a_job(client, app):
    before = lh.sqlite_rows(app, "select count(*) from jobs")[0][0]
    resp = client.get("/dispatch?note=from-route")
    assert resp.status == 200 and resp.json()["queued"] is True
    rows = lh.sqlite_rows(app, "select payload from jobs")
    assert len(rows) == before + 1
    assert "WriteJobMark" in rows[-1][0]


def test_flash_lives_for_one_request(client):
    assert client.get("/flash?value=hi").json() == {"flashed": "hi"}
    assert client.get("/flash/show").json() == {"message": "hi"}
    assert client.get("/flash/show").json() == {"message": None}


def test_locale_is_per_request(client):
    assert client.get("/locale/fr").json() == {"locale": "fr", "translator": "fr"}
    assert client.get("/locale").json() == {"locale": "en", "translator": "en"}


def test_probes_show_state_set_in_the_same_request(client):
    resp = client.get("/probe/cookie?set=v1")
    assert resp.json() == {"queued": ["probe"]}
    assert any(c.startswith("probe=") for c in resp.set_cookies())
    assert client.get("/probe/config?set=v2").json() == {"probe": "v2"}
    assert client.get("/probe/config").json() == {"probe": None}
    assert client.get("/probe/share?set=v3").body.strip() == "probe=v3"
    assert client.get("/probe/share").body.strip() == "probe=none"


def test_setup_script_is_idempotent(app, client):
    again = subprocess.run(["sh", str(lh.SETUP), str(app)], capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "ready in" in again.stdout
    assert lh.sqlite_rows(app, "select count(*) from users") == [(2,)]
    assert client.get("/db").json()["count"] == 8
    for cached in ("config.php", "routes-v7.php"):
        assert (app / "bootstrap" / "cache" / cached).is_file()
