"""In worker mode no request sees another request's state.

examples/laravel-worker.php boots Laravel once and serves every request
from the same objects.  These tests run it under php-cli with
tests/php_stubs/askr_stub.php in place of Askr's askr_handle_request() and
check that sessions, logins, flashed data, CSRF tokens and the locale stay
with the client they belong to, and that an exception does not poison the
requests after it.  Askr itself is not involved.
"""

from __future__ import annotations

import random
import shutil
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
    return lh.make_app_copy(tmp_path_factory.mktemp("laravel-worker"))


@pytest.fixture
def worker(app):
    proc = lh.StubWorker(app)
    try:
        yield proc
    finally:
        log = proc.stop()
        assert "Fatal error" not in log, log


def test_interleaved_clients_never_share_state(worker):
    """500 requests from two logged-in clients, shuffled, one worker."""
    alice, bob = lh.Client(worker), lh.Client(worker)
    assert alice.login("demo@example.com").status == 200
    assert bob.login("other@example.com").status == 200

    expected = {
        id(alice): {"user": "demo@example.com", "counter": 0, "sid": None,
                    "flash_next": None},
        id(bob): {"user": "other@example.com", "counter": 0, "sid": None,
                  "flash_next": None},
    }
    rng = random.Random(20261203)
    routes = ["/session", "/session", "/me", "/flash", "/flash/show"]

    for n in range(500):
        client = rng.choice((alice, bob))
        state = expected[id(client)]
        route = rng.choice(routes)
        flash_now, state["flash_next"] = state["flash_next"], None

        if route == "/session":
            data = client.get("/session").json()
            state["counter"] += 1
            assert data["counter"] == state["counter"], (n, data)
            state["sid"] = state["sid"] or data["session_id"]
            assert data["session_id"] == state["sid"], n
        elif route == "/me":
            assert client.get("/me").json()["user"] == state["user"], n
        elif route == "/flash":
            value = f"{state['user']}-{n}"
            assert client.get(f"/flash?value={value}").status == 200
            state["flash_next"] = value
        else:
            message = client.get("/flash/show").json()["message"]
            assert message == flash_now, (n, message, flash_now)

    assert expected[id(alice)]["sid"] != expected[id(bob)]["sid"]
    assert expected[id(alice)]["counter"] > 50
    assert expected[id(bob)]["counter"] > 50


def test_new_client_after_logged_in_one_starts_clean(worker):
    user = lh.Client(worker)
    assert user.login("demo@example.com").status == 200
    user.get("/session")
    user.get("/flash?value=secret")

    stranger = lh.Client(worker)
    assert stranger.get("/me").json() == {"user": None, "guest": True}
    assert stranger.get("/flash/show").json() == {"message": None}
    assert stranger.get("/session").json()["counter"] == 1
    assert not any("remember" in name for name in stranger.cookies)


def test_request_after_exception_is_served_normally(worker):
    client = lh.Client(worker)
    assert client.get("/session").json()["counter"] == 1
    assert client.get("/throw").status == 500
    resp = client.get("/text")
    assert resp.status == 200 and resp.body == "Hello from Laravel on Askr"
    assert client.get("/session").json()["counter"] == 2
    assert client.get("/db").json()["count"] == 8


def test_csrf_missing_is_419_and_valid_is_200(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    assert alice.post("/form", {"name": "x"}).status == 419

    token = alice.csrf_token()
    resp = alice.post("/form", {"_token": token, "name": "alice"})
    assert resp.status == 200 and resp.json()["name"] == "alice"

    # A token belongs to its session: another client cannot reuse it, even
    # though the same worker just held it in memory.
    bob.get("/text")
    assert bob.post("/form", {"_token": token, "name": "bob"}).status == 419


def test_locale_set_by_one_request_is_gone_for_the_next(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    assert alice.get("/locale/de").json() == {"locale": "de", "translator": "de"}
    assert bob.get("/locale").json() == {"locale": "en", "translator": "en"}
    assert alice.get("/locale").json() == {"locale": "en", "translator": "en"}
    assert 'lang="en"' in bob.get("/blade").body


def test_logout_does_not_log_out_others(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    alice.login("demo@example.com")
    bob.login("other@example.com")
    token = alice.csrf_token()
    assert alice.post("/logout", {"_token": token}).status == 200
    assert alice.get("/me").json()["guest"] is True
    assert bob.get("/me").json()["user"] == "other@example.com"


def test_queued_cookie_goes_only_to_its_request(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    resp = alice.get("/probe/cookie?set=alice-pref")
    assert any(c.startswith("probe=") for c in resp.set_cookies())

    later = bob.get("/probe/cookie")
    assert later.json() == {"queued": []}
    assert not any(c.startswith("probe=") for c in later.set_cookies())


def test_runtime_config_change_is_undone(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    assert alice.get("/probe/config?set=tenant-a").json() == {"probe": "tenant-a"}
    assert bob.get("/probe/config").json() == {"probe": None}


def test_view_shared_data_is_undone(worker):
    alice, bob = lh.Client(worker), lh.Client(worker)
    assert alice.get("/probe/share?set=alice-data").body.strip() == (
        "probe=alice-data")
    assert bob.get("/probe/share").body.strip() == "probe=none"


def test_memory_stays_flat_over_many_requests(worker):
    """Per-request resets must not leave anything behind that accumulates.

    Rebuilding auth guards for each request used to leave one container
    callback (holding the dead guard) per request: about 1 KB each.
    """
    client, other = lh.Client(worker), lh.Client(worker)
    client.login("demo@example.com")
    routes = ["/me", "/session", "/throw", "/blade", "/flash?value=x",
              "/flash/show", "/locale/fr", "/probe/cookie?set=1"]

    def burst(count: int) -> int:
        memory = 0
        for n in range(count):
            resp = (client if n % 2 else other).get(routes[n % len(routes)])
            memory = resp.memory
        return memory

    warm = burst(200)
    grown = burst(1000) - warm
    assert grown < 128 * 1024, grown
