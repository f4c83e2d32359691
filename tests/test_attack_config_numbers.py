"""nan and inf in askr.toml: nan compares false with every bound, so it
used to pass the range check and made the timeout never fire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "askr.cli", "config-check",
                           str(path)], capture_output=True, text=True,
                          cwd=TOP, timeout=60, check=False)


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
