"""askr.toml values: defaults, conversions, path resolution, overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from askr import config
from askr.config import Address
from askr.errors import ConfigError

CONFIGS = Path(__file__).parent / "configs"
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_config_defaults_without_a_file():
    cfg = config.load(None)

    assert cfg.server.listen == (Address("127.0.0.1", 8080),)
    assert cfg.server.workers == (os.cpu_count() or 1)
    assert cfg.server.max_body_size == 100 << 20
    assert cfg.admin.listen == Address("127.0.0.1", 9180)
    assert cfg.admin.allow_public is False
    assert cfg.scheduler.interval == 60
    assert cfg.mode == "classic"


def test_config_every_setting_has_a_doc_and_a_valid_default():
    for s in config.SETTINGS:
        assert s.doc.strip(), s.key
        s.check(s.default)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", Address("127.0.0.1", 8080)),
    ("0.0.0.0:80", Address("0.0.0.0", 80)),
    ("[::1]:8080", Address("::1", 8080)),
    ("[::]:443", Address("::", 443)),
])
def test_config_listen_addresses_parse(text, expected):
    addr = config.parse_address(text)

    assert addr == expected
    assert str(addr) == text


@pytest.mark.parametrize("text, size", [
    ("128M", 128 << 20), ("1G", 1 << 30), ("512K", 512 << 10), ("0", 0),
    (4096, 4096), ("64MB", 64 << 20),
])
def test_config_sizes_accept_units(text, size):
    assert config.parse_size(text) == size


def test_config_relative_paths_resolve_against_the_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    cfg = config.load(CONFIGS / "good-worker.toml")

    assert cfg.server.root == str(CONFIGS / "www")
    assert cfg.worker.script == str(CONFIGS / "www" / "worker.php")
    assert cfg.mode == "worker"


def test_config_ini_table_becomes_key_value_lines():
    cfg = config.load(CONFIGS / "good-worker.toml")

    assert cfg.worker.ini.splitlines() == [
        "opcache.enable=1", "memory_limit=256M", "expose_php=0"]


def test_config_overrides_beat_the_file_and_resolve_against_cwd(
        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    cfg = config.load(CONFIGS / "good-classic.toml", {
        "server.workers": 7, "server.listen": ["[::1]:0"],
        "server.root": "elsewhere"})

    assert cfg.server.workers == 7
    assert cfg.server.listen == (Address("::1", 0),)
    assert cfg.server.root == str(tmp_path / "elsewhere")


def test_config_bad_override_names_the_flag():
    with pytest.raises(ConfigError) as info:
        config.load(None, {"server.io": "kqueue"})

    assert str(info.value).startswith(
        "command line: [server] io (--io): expected one of")


def test_config_is_frozen():
    cfg = config.load(None)

    with pytest.raises(AttributeError):
        cfg.server.workers = 3


def test_config_public_admin_allowed_when_asked(tmp_path):
    path = tmp_path / "askr.toml"
    path.write_text('[admin]\nlisten = "0.0.0.0:9180"\nallow_public = true\n')

    assert config.load(path).admin.listen == Address("0.0.0.0", 9180)


def test_config_items_are_sorted_and_complete():
    keys = [k for k, _ in config.load(None).items()]

    assert keys == sorted(keys)
    assert len(keys) == len(config.SETTINGS)


@pytest.mark.parametrize("name", ["askr.toml", "askr-classic.toml"])
def test_config_examples_load(name):
    cfg = config.load(EXAMPLES / name)

    assert cfg.server.root == str(EXAMPLES / "laravel-app" / "public")


def test_config_reference_documents_every_setting():
    text = config.reference()

    for s in config.SETTINGS:
        assert f"| {s.name} |" in text, s.key
    assert text.count("## [") == len(config.SECTIONS)


def test_config_warnings_are_kept_not_raised(tmp_path):
    (tmp_path / "app").mkdir()
    path = tmp_path / "askr.toml"
    path.write_text('[worker]\napp_base = "app"\n')

    cfg = config.load(path)

    assert [str(w) for w in cfg.warnings] == [
        (f"{path}:2: warning: [worker] app_base: app_base is ignored without a "
        "worker script")]


def test_config_check_uses_the_ini_extension_dir(tmp_path):
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "mine.so").write_bytes(b"")
    (tmp_path / "www").mkdir()
    path = tmp_path / "askr.toml"
    path.write_text('[server]\nroot = "www"\n[admin]\nlisten = ""\n[worker]\n'
                    f'ini = "extension_dir={tmp_path}/ext\\nextension=mine"\n')

    found = config.check(config.load(path), extension_dir="/nowhere", bind=False)

    assert found == []


def test_config_cross_check_blames_the_flag_that_set_the_value():
    with pytest.raises(ConfigError) as info:
        config.load(CONFIGS / "good-classic.toml",
                    {"admin.listen": "0.0.0.0:9180"})

    assert str(info.value).startswith(
        "command line: [admin] listen (--admin-listen): 0.0.0.0:9180 is not")
