"""Worker mode: one long-lived script serves many requests through
askr_handle_request(); nothing of request N may be visible in request N+1.

Like the classic tests, the bridge runs in a child process
(tests/php/bridge_runner.py), because fatal errors are part of the test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "php"))

from bridge_client import Runner, job, multipart

N = 1000
ACTIONS = ["probe", "dirty", "upload", "post", "dirty", "probe", "upload"]


@pytest.fixture
def dirs(tmp_path):
    up = tmp_path / "uploads"
    sess = tmp_path / "sessions"
    up.mkdir()
    sess.mkdir()
    return up, sess


def runner_for(dirs, timeout: float = 0) -> Runner:
    up, sess = dirs
    return Runner(
        f"upload_tmp_dir={up}\nsession.save_path={sess}\nmax_execution_time=0\n",
        timeout=timeout,
    )


def token(i: int) -> str:
    return f"tok{i:05d}x"


def make_job(i: int, action: str) -> dict:
    t = token(i)
    common = {
        "query": f"action={action}&token={t}",
        "headers": {"X-Token": t, "Cookie": f"c={t}; PHPSESSID=s{t}"},
    }
    if action == "upload":
        body, ctype = multipart({"field": t}, {"doc": (f"{t}.txt", f"content-{t}")})
        return job("worker.php", method="POST", body=body, content_type=ctype, **common)
    if action == "post":
        return job("worker.php", method="POST", body=f"p={t}", **common)
    return job("worker.php", **common)


def decode(data: str) -> dict:
    start = data.index('{"before"')
    end = data.index("SHUTDOWN:") if "SHUTDOWN:" in data else len(data)
    return json.loads(data[start:end])


def check_clean(i: int, before: dict, action: str) -> None:
    t = token(i)
    assert before["get"] == {"action": action, "token": t}
    assert before["cookie"] == {"c": t, "PHPSESSID": "s" + t}
    assert before["token_header"] == t
    assert before["server_token_keys"] == []
    assert before["session_status"] == 1  # PHP_SESSION_NONE
    assert before["session_id"] == ""
    assert before["session_var"] is False
    assert before["precision"] == "10"  # set by the script at boot: kept
    assert before["serialize_precision"] == "-1"  # set by a request: undone
    assert before["env"] is False
    assert before["error_handler_is_boot"] is True
    assert before["exception_handler"] is False
    assert before["ob_level"] == 0
    assert [h for h in before["headers"] if not h.startswith("X-Powered-By")] == []
    assert before["status"] == 200
    assert before["last_error"] is None
    if action == "post":
        assert before["post"] == {"p": t}
        assert before["input"] == f"p={t}"
    elif action == "upload":
        assert before["post"] == {"field": t}
        assert list(before["files"]) == ["doc"]
    else:
        assert before["post"] == []
        assert before["files"] == []


def test_thousand_requests_without_leaks(dirs):
    jobs = [make_job(i, ACTIONS[i % len(ACTIONS)]) for i in range(N)]
    r = runner_for(dirs)
    try:
        a = r.call(
            {
                "op": "worker",
                "boot": job("worker.php"),
                "jobs": jobs,
                "rss_at": [100, N],
            }
        )
    finally:
        r.close()

    assert a["results"] == ["done"]
    assert a["boot"] == [[200, a["boot"][0][1], "booted", True]]
    assert len(a["sends"]) == N
    booted = None
    for i, sends in enumerate(a["sends"]):
        action = ACTIONS[i % len(ACTIONS)]
        assert len(sends) == 1, f"request {i}: {len(sends)} sends"
        status, headers, data, last = sends[0]
        assert last is True
        d = decode(data)
        booted = booted or d["booted"]
        assert d["booted"] == booted  # one script served them all
        assert d["served"] == i + 1
        check_clean(i, d["before"], action)
        if i:
            assert token(i - 1) not in data
            assert not any(token(i - 1) in h for h in headers)
        if action == "dirty":
            assert status == 207
            assert f"Set-Cookie: k={token(i)}" in headers
            assert f"X-Set-{token(i)}: 1" in headers
            # a shutdown function registered by the request ran at its end
            assert data.endswith(f"SHUTDOWN:{token(i)}")
        else:
            assert status == 200
        if action == "upload":
            assert f"CONTENT:content-{token(i)}" in data
            assert "UPLOADED:yes" in data

    assert a["leaked"] == []
    up, sess = dirs
    assert list(up.iterdir()) == []
    # sessions were written at the end of each "dirty" request
    assert (sess / f"sess_s{token(1)}").read_text() == f'token|s:9:"{token(1)}";'
    growth = a["rss"][str(N)] - a["rss"]["100"]
    assert growth < 5 * 1024 * 1024, f"RSS grew {growth} bytes over {N - 100} requests"


def test_fatal_in_handler_is_500_then_script_restarts(dirs):
    actions = ["probe", "fatal", "probe", "memory", "probe"]
    jobs = [make_job(i, a) for i, a in enumerate(actions)]
    r = runner_for(dirs)
    try:
        a = r.call({"op": "worker", "boot": job("worker.php"), "jobs": jobs})
    finally:
        r.close()
    assert a["results"] == ["fatal", "fatal", "done"]
    s = a["sends"]
    assert s[1][0][0] == 500 and s[1][0][2] == "partial" and s[1][0][3] is True
    assert s[3][0][0] == 500
    first, second, third = (decode(s[i][0][2]) for i in (0, 2, 4))
    assert first["booted"] != second["booted"] != third["booted"]
    assert second["served"] == 1
    check_clean(2, second["before"], "probe")
    logs = "\n".join(m for _, m in a["logs"])
    assert "handler-fatal" in logs
    assert "Allowed memory size of 16777216 bytes exhausted" in logs


def test_exception_in_handler_is_500_and_worker_survives(dirs):
    jobs = [make_job(i, a) for i, a in enumerate(["exception", "probe"])]
    r = runner_for(dirs)
    try:
        a = r.call({"op": "worker", "boot": job("worker.php"), "jobs": jobs})
    finally:
        r.close()
    assert a["results"] == ["done"]
    assert a["sends"][0][0][0] == 500
    after = decode(a["sends"][1][0][2])
    assert after["served"] == 2
    check_clean(1, after["before"], "probe")
    assert any(
        "Uncaught RuntimeException: handler-exception" in m for _, m in a["logs"]
    )


def test_exit_in_handler_ends_only_that_request(dirs):
    jobs = [make_job(i, a) for i, a in enumerate(["exit", "probe"])]
    r = runner_for(dirs)
    try:
        a = r.call({"op": "worker", "boot": job("worker.php"), "jobs": jobs})
    finally:
        r.close()
    assert a["results"] == ["done"]
    status, headers, data, last = a["sends"][0][0]
    assert (status, data, last) == (203, "exit-body", True)
    assert "X-Exit: yes" in headers
    after = decode(a["sends"][1][0][2])
    assert after["served"] == 2
    check_clean(1, after["before"], "probe")


def test_request_timeout_in_worker_is_504(dirs):
    jobs = [make_job(i, a) for i, a in enumerate(["sleep", "probe"])]
    r = runner_for(dirs, timeout=0.5)
    try:
        a = r.call({"op": "worker", "boot": job("worker.php"), "jobs": jobs})
    finally:
        r.close()
    assert a["sends"][0][0][0] == 504
    assert a["results"][-1] == "done"
    assert decode(a["sends"][1][0][2])["before"]["get"]["token"] == token(1)
    assert any("wall-clock limit of 0.5s exceeded" in m for _, m in a["logs"])


def test_script_ending_on_its_own_is_exit_and_boot_fatal_is_fatal(dirs):
    r = runner_for(dirs)
    try:
        a = r.call({"op": "worker", "boot": job("worker_exits.php"), "jobs": []})
        b = r.call({"op": "worker", "boot": job("worker_broken.php"), "jobs": []})
    finally:
        r.close()
    assert a["results"] == ["exit"]
    assert a["boot"] == [[200, a["boot"][0][1], "boot-output", True]]
    assert b["results"] == ["fatal"]
    assert b["boot"][0][0] == 500
    assert b["boot"][-1][3] is True
    assert any("askr_no_such_boot_function" in m for _, m in b["logs"])


def test_handle_request_outside_worker_mode_throws(dirs):
    r = runner_for(dirs)
    try:
        a = r.call({"op": "run", "job": job("worker.php")})
    finally:
        r.close()
    assert a["sends"][0][0] == 500
    assert any("outside worker mode" in m for _, m in a["logs"])


def test_client_gone_mid_stream_does_not_restart_the_worker(dirs, tmp_path):
    marker = tmp_path / "marker"
    gone = job("worker.php", query=f"action=abort&marker={marker}", abort_after=2)
    jobs = [gone, make_job(1, "probe")]
    r = runner_for(dirs)
    try:
        a = r.call({"op": "worker", "boot": job("worker.php"), "jobs": jobs})
    finally:
        r.close()
    assert a["results"] == ["done"]
    assert [s[3] for s in a["sends"][0]][-1] is True
    assert marker.read_text() == "aborted=1"
    after = decode(a["sends"][1][0][2])
    assert after["served"] == 2
    check_clean(1, after["before"], "probe")
