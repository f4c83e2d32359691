"""askr doctor verdicts from invented facts: each host problem and its advice."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from askr import config, doctor
from askr.doctor import FAIL, OK, WARN, Facts

ROOT = Path(__file__).parent.parent
CONFIGS = Path(__file__).parent / "configs"


def healthy(**changes) -> Facts:
    """A host where everything is fine; tests change one fact at a time."""
    facts = Facts(
        php={"version": "8.2.36", "version_id": 80236, "zts": False,
             "extension_dir": str(CONFIGS), "embed_lib": "/usr/lib/libphp8.2.so",
             "embed_loadable": True, "source": "test",
             "extensions": ["Core", "ctype", "fileinfo", "json", "mbstring",
                            "openssl", "PDO", "tokenizer", "xml", "Zend OPcache"]},
        uring={"kernel": "6.1.0", "io_uring_disabled": 0, "setup_ok": True,
               "setup_errno": None, "flags": {"SINGLE_ISSUER": True},
               "ops": {"ACCEPT": True, "RECV": True, "SEND": True},
               "features": {"multishot_accept": True, "buf_ring": True},
               "memlock": 8 << 20, "usable": True, "reason": "all ops present"},
        cpu_count=4, nofile=(65536, 65536), euid=1000,
        config=config.load(CONFIGS / "good-classic.toml"),
        config_path=str(CONFIGS / "good-classic.toml"),
        ports={"127.0.0.1:8080": None},
    )
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


def by_name(checks: list[doctor.Check], name: str) -> doctor.Check:
    found = [c for c in checks if c.name == name]
    assert len(found) == 1, [c.name for c in checks]
    return found[0]


def verdict(facts: Facts, name: str) -> doctor.Check:
    return by_name(doctor.run_checks(facts), name)


def blocked(facts: Facts) -> bool:
    return any(c.status == FAIL for c in doctor.run_checks(facts))


def with_uring(**changes) -> dict:
    uring = dict(healthy().uring)
    uring.update(changes)
    return uring


def with_config(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "askr.toml"
    path.write_text(text)
    return config.load(path)


def test_doctor_healthy_host_is_all_green():
    checks = doctor.run_checks(healthy())

    assert [c for c in checks if c.status != OK] == []
    assert not blocked(healthy())


def test_doctor_kernel_4_19_has_no_io_uring_but_auto_still_serves():
    facts = healthy(uring=with_uring(kernel="4.19.0-25-amd64", setup_ok=False,
                                     setup_errno=errno.ENOSYS, usable=False,
                                     reason="io_uring_setup: ENOSYS"))

    kernel = verdict(facts, "kernel")
    backend = verdict(facts, "io backend")

    assert kernel.status == WARN
    assert "no io_uring" in kernel.fact and "epoll" in kernel.advice
    assert backend.status == WARN and backend.fact.startswith("auto: epoll")
    assert not blocked(facts)


def test_doctor_kernel_4_19_blocks_when_uring_is_forced(tmp_path):
    facts = healthy(uring=with_uring(kernel="4.19.0", setup_ok=False,
                                     setup_errno=errno.ENOSYS, usable=False),
                    config=with_config(tmp_path, '[server]\nio = "uring"\n'))

    assert verdict(facts, "kernel").status == FAIL
    assert verdict(facts, "io backend").status == FAIL
    assert 'io = "auto"' in verdict(facts, "io backend").advice
    assert blocked(facts)


def test_doctor_kernel_5_4_is_a_warning_recommending_5_10():
    facts = healthy(uring=with_uring(kernel="5.4.0-150-generic"))

    check = verdict(facts, "kernel")

    assert check.status == WARN
    assert "5.10" in check.advice
    assert not blocked(facts)


def test_doctor_io_uring_disabled_2_says_how_to_enable():
    facts = healthy(uring=with_uring(io_uring_disabled=2, setup_ok=False,
                                     setup_errno=errno.EPERM, usable=False))

    check = verdict(facts, "kernel.io_uring_disabled")

    assert check.status == WARN
    assert "disabled for everyone" in check.fact
    assert "sysctl -w kernel.io_uring_disabled=0" in check.advice


def test_doctor_io_uring_disabled_1_is_fine_for_root_only():
    facts = healthy(uring=with_uring(io_uring_disabled=1))

    assert verdict(facts, "kernel.io_uring_disabled").status == WARN
    facts.euid = 0
    assert verdict(facts, "kernel.io_uring_disabled").status == OK


def test_doctor_seccomp_refusal_is_named_with_its_errno():
    facts = healthy(uring=with_uring(kernel="6.1.0", setup_ok=False,
                                     setup_errno=errno.EPERM, usable=False,
                                     reason="io_uring_setup: EPERM"))

    check = verdict(facts, "io_uring setup")

    assert check.status == WARN
    assert "EPERM" in check.fact and "seccomp" in check.fact
    assert "seccomp profile" in check.advice
    assert not any(c.name.startswith("io_uring op") for c in
                   doctor.run_checks(facts))


def test_doctor_missing_op_is_listed_with_its_consequence():
    facts = healthy(uring=with_uring(ops={"ACCEPT": True, "SEND_ZC": False}))

    check = verdict(facts, "io_uring op SEND_ZC")

    assert check.status == WARN and check.fact == "absent"
    assert "slower path" in check.advice
    assert verdict(facts, "io_uring op ACCEPT").status == OK


def test_doctor_zts_php_is_refused_with_the_reason():
    php = dict(healthy().php, zts=True)

    check = verdict(healthy(php=php), "php thread safety")

    assert check.status == FAIL
    assert "fork" in check.advice and "NTS" in check.advice
    assert blocked(healthy(php=php))


def test_doctor_missing_laravel_extension_names_the_package():
    php = dict(healthy().php)
    php["extensions"] = [e for e in php["extensions"] if e != "mbstring"]

    check = verdict(healthy(php=php), "php extensions (Laravel)")

    assert check.status == WARN
    assert check.fact == "missing: mbstring"
    assert "php8.2-mbstring" in check.advice


def test_doctor_ini_extension_missing_from_extension_dir_blocks(tmp_path):
    cfg = with_config(tmp_path, "[worker]\nini = \"zend_extension=nope.so\"\n")

    check = verdict(healthy(config=cfg), "php ini zend_extension=nope.so")

    assert check.status == FAIL
    assert check.fact == f"{CONFIGS}/nope.so not found"


def test_doctor_no_embed_library_blocks():
    facts = healthy(php=None, php_error="PHP not found: php-config missing")

    check = verdict(facts, "php embed")

    assert check.status == FAIL
    assert "libphp8.2-embed" in check.advice


def test_doctor_low_file_limit_says_how_to_raise_it():
    check = verdict(healthy(nofile=(1024, 4096)), "open files")

    assert check.status == WARN
    assert "soft 1024, hard 4096" in check.fact
    assert "LimitNOFILE=65536" in check.advice
    assert "ulimit -n 8192" in verdict(healthy(nofile=(1024, 1 << 20)),
                                       "open files").advice


def test_doctor_public_admin_address_blocks_unless_allowed(tmp_path):
    cfg = with_config(tmp_path, '[admin]\nlisten = "0.0.0.0:9180"\n'
                      "allow_public = true\n")
    facts = healthy(config=cfg)

    assert verdict(facts, "admin listener").status == WARN

    facts.config = dataclasses.replace(
        cfg, admin=dataclasses.replace(cfg.admin, allow_public=False))
    check = verdict(facts, "admin listener")
    assert check.status == FAIL
    assert "allow_public" in check.advice


def test_doctor_port_in_use_blocks():
    facts = healthy(ports={"127.0.0.1:80": "127.0.0.1:80 is already in use"})

    assert verdict(facts, "listen 127.0.0.1:80").status == FAIL
    assert blocked(facts)


def test_doctor_root_user_is_warned():
    check = verdict(healthy(euid=0), "user")

    assert check.status == WARN and "CAP_NET_BIND_SERVICE" in check.advice


def test_doctor_too_many_workers_for_the_cpus(tmp_path):
    cfg = with_config(tmp_path, "[server]\nworkers = 16\n")

    check = verdict(healthy(config=cfg, cpu_count=2), "workers")

    assert check.status == WARN and "16 worker(s), 2 CPU(s)" == check.fact


def test_doctor_old_kernel_with_low_memlock_is_warned():
    facts = healthy(uring=with_uring(kernel="5.10.0", memlock=64 << 10))

    check = verdict(facts, "memlock limit")

    assert check.status == WARN and "LimitMEMLOCK" in check.advice


def test_doctor_text_report_marks_each_line():
    text = doctor.report(doctor.run_checks(healthy(euid=0)), as_json=False)

    assert "✓ kernel" in text
    assert "! user" in text
    assert text.splitlines()[-1] == "ready to serve"


@pytest.mark.timeout(120)
def test_doctor_json_on_this_machine():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "askr.cli", "doctor", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=100, check=False)

    doc = json.loads(res.stdout)
    names = {c["name"] for c in doc["checks"]}
    assert res.returncode == (0 if doc["ok"] else 1), res.stderr
    assert {"php embed", "kernel", "io_uring setup", "io backend",
            "open files"} <= names
    assert all(c["status"] in (OK, WARN, FAIL) for c in doc["checks"])
    assert doc["facts"]["cpu_count"] == os.cpu_count()
