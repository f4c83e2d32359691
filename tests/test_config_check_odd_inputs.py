"""config-check on inputs no askr.toml should be: devices, huge files,
absurd worker counts, non-finite numbers (nan compares false with every
bound, so it used to pass the range check and made a timeout never fire).
Each gets a clear answer, at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent


def _check(path: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "askr.cli", "config-check",
                           str(path)], capture_output=True, text=True,
                          cwd=TOP, timeout=30, check=False)


def test_a_device_is_refused_not_read_for_ever():
    out = _check("/dev/zero")
    assert out.returncode != 0
    assert "/dev/zero" in out.stdout + out.stderr
    assert "not a regular file" in out.stdout + out.stderr


def test_a_huge_file_is_refused(tmp_path):
    big = tmp_path / "askr.toml"
    big.write_text("# padding\n" * 200_000)    # 2 MB of comments
    out = _check(big)
    assert out.returncode != 0
    assert "larger than 1 MiB" in out.stdout + out.stderr


def test_absurd_worker_counts(tmp_path):
    (tmp_path / "public").mkdir()
    conf = tmp_path / "askr.toml"
    conf.write_text(f'[server]\nroot = "{tmp_path / "public"}"\n'
                    "workers = 100000\n")
    out = _check(conf)
    assert out.returncode != 0
    assert "[server] workers: expected" in out.stdout + out.stderr
    assert "from 1 to 1024" in out.stdout + out.stderr

    # Allowed, but far more than the cores: a warning, still exit 0.
    conf.write_text(f'[server]\nroot = "{tmp_path / "public"}"\n'
                    "workers = 1000\n")
    out = _check(conf)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1000 workers on" in out.stdout + out.stderr


@pytest.mark.parametrize("key,value", [
    ("keepalive_timeout", "nan"), ("header_timeout", "inf"),
    ("body_timeout", "-inf"), ("request_timeout", "1e400")])
def test_non_finite_timeouts_are_rejected(tmp_path, key, value):
    (tmp_path / "public").mkdir()
    conf = tmp_path / "askr.toml"
    conf.write_text(f'[server]\nroot = "{tmp_path / "public"}"\n'
                    f"{key} = {value}\n")
    out = _check(conf)
    assert out.returncode != 0, out.stdout + out.stderr
    assert f"[server] {key}: expected a finite number" in out.stdout + out.stderr


def test_finite_timeout_still_accepted(tmp_path):
    (tmp_path / "public").mkdir()
    conf = tmp_path / "askr.toml"
    conf.write_text(f'[server]\nroot = "{tmp_path / "public"}"\n'
                    "keepalive_timeout = 2.5\n")
    out = _check(conf)
    assert out.returncode == 0, out.stdout + out.stderr
