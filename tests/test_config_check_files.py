"""askr.toml validation: every broken file in tests/configs names its fault.

Each tests/configs/bad-*.toml opens with "# expect: LINE: MESSAGE", where
MESSAGE may hold "*" for the parts that vary (absolute paths).  The test
loads and checks the file as `askr config-check` does and requires a
problem reading "FILE:LINE: MESSAGE".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from askr import config
from askr.errors import ConfigError

CONFIGS = Path(__file__).parent / "configs"
BAD = sorted(CONFIGS.glob("bad-*.toml"))
GOOD = sorted(CONFIGS.glob("good-*.toml"))


def problems_of(path: Path) -> list[str]:
    """What config-check reports for path (bind checks included)."""
    try:
        cfg = config.load(path)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    found = config.check(cfg, extension_dir=str(CONFIGS / "no-ext-dir"))
    return [str(p) for p in found if p.severity == "error"]


def matches(pattern: str, text: str) -> bool:
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.fullmatch(".*".join(parts) + ".*", text) is not None


def test_config_there_are_at_least_twenty_broken_files():
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_config_check_reports_the_expected_problem(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), "fixture lacks its expectation"
    expected = "{}:{}".format(path, first.removeprefix("# expect: "))

    found = problems_of(path)

    assert any(matches(expected, p) for p in found), (expected, found)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_config_good_files_have_no_problem(path: Path):
    assert problems_of(path) == []


def test_config_reports_every_problem_not_just_the_first(tmp_path: Path):
    bad = tmp_path / "askr.toml"
    bad.write_text(
        "[server]\n"
        'listen = ["127.0.0.1:99999", "localhost:80"]\n'
        "wokers = 4\n"
        'max_body_size = "big"\n'
        "[workr]\n"
        'script = "x.php"\n'
        "[admin]\n"
        'listen = "0.0.0.0:9180"\n'
    )

    with pytest.raises(ConfigError) as info:
        config.load(bad)
    text = str(info.value)

    assert f"{bad}:2: [server] listen: expected a port" in text
    assert "got 'localhost:80'" in text
    assert f'{bad}:3: [server] wokers: unknown key (did you mean "workers"?)' in text
    assert f"{bad}:4: [server] max_body_size:" in text
    assert f'{bad}:5: [workr]: unknown section (did you mean "worker"?)' in text
    assert f"{bad}:8: [admin] listen: 0.0.0.0:9180 is not a loopback" in text
    assert len(info.value.problems) == 5


def test_config_key_inside_multiline_string_is_not_taken_for_a_setting(tmp_path):
    path = tmp_path / "askr.toml"
    path.write_text('[worker]\nini = """\nworkers=3\n"""\n[server]\nworkers = 0\n')

    with pytest.raises(ConfigError) as info:
        config.load(path)

    assert f"{path}:6: [server] workers:" in str(info.value)


def test_config_port_in_use_is_reported(tmp_path: Path):
    import socket

    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        (tmp_path / "www").mkdir()
        path = tmp_path / "askr.toml"
        path.write_text(f'[server]\nroot = "www"\nlisten = ["127.0.0.1:{port}"]\n'
                        '[admin]\nlisten = ""\n')

        found = [str(p) for p in config.check(config.load(path))]
    finally:
        busy.close()

    assert found == [(f"{path}:3: [server] listen: 127.0.0.1:{port} is already "
                     "in use by another process")]
