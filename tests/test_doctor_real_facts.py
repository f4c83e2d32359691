"""Fact gathering on this machine: the fallbacks agree with the real probes."""

from __future__ import annotations

import shutil

import pytest

from askr import doctor


@pytest.mark.skipif(shutil.which("php-config") is None, reason="no php-config")
def test_doctor_php_tools_fallback_reads_the_embed_library():
    info = doctor._php_from_tools()

    assert info["embed_loadable"] is True
    assert info["zts"] is False  # Debian's libphp8.2-embed is NTS
    assert info["version_id"] >= 80000
    assert "mbstring" in {e.lower() for e in info["extensions"]}


def test_doctor_bare_setup_syscall_agrees_with_the_probe():
    probe = pytest.importorskip("askr.uring.probe")

    ok, err = doctor._setup_syscall()

    assert ok == bool(probe.probe()["setup_ok"]), err
