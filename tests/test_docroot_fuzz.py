"""Hypothesis fuzzing of docroot.resolve: it never raises, and whatever it
routes to stays inside the root, is never a dotfile and never PHP source."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from askr.http.docroot import PHP, REDIRECT, REFUSE, STATIC, resolve

PIECES = ["/", "//", "..", ".", "%2e", "%2E", "%2f", "%2F", "%00", "%c0%ae",
          "%c0%af", "%e0%80%ae", "%ff", "%", "%4", "%zz", "css", "app.css",
          ".env", ".git", "config", "index.php", "info.php", "leak.txt",
          "leakdir", "secret.txt", ".well-known", "acme", "?", "#", "a.php",
          "x.PHP", "old.phtml", "docs", "%20", "\u00e9", "%C3%A9", "styles"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzzroot")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    pub = base / "public"
    (pub / "css").mkdir(parents=True)
    (pub / "css" / "app.css").write_text("x")
    (pub / "css" / "config").write_text("x")
    (pub / "index.php").write_text("<?php")
    (pub / "info.php").write_text("<?php")
    (pub / "x.PHP").write_text("<?php")
    (pub / "old.phtml").write_text("<?php")
    (pub / ".env").write_text("KEY=1")
    (pub / ".git").mkdir()
    (pub / ".git" / "config").write_text("x")
    (pub / ".well-known").mkdir()
    (pub / ".well-known" / "acme").write_text("x")
    (pub / "docs").mkdir()
    (pub / "docs" / "index.html").write_text("x")
    os.symlink(outside / "secret.txt", pub / "leak.txt")
    os.symlink(outside, pub / "leakdir")
    os.symlink(pub / "css", pub / "styles")
    return os.path.realpath(pub)


def inside(root, path):
    real = os.path.realpath(path)
    return real.startswith(root + "/")


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=10),
       lead=st.sampled_from(["/", "", "http://h/", "*"]))
def test_resolve_never_escapes(root, parts, lead):
    target = (lead + "".join(parts)).encode()
    route = resolve(root, target)

    assert route.kind in (STATIC, PHP, REDIRECT, REFUSE)
    if route.kind == STATIC:
        assert inside(root, route.path)
        rel = os.path.relpath(os.path.realpath(route.path), root)
        segs = rel.split("/")
        assert all(not s.startswith(".") or (i == 0 and s == ".well-known")
                   for i, s in enumerate(segs)), rel
        assert not rel.lower().endswith((".php", ".phtml"))
        assert route.stat is not None
    elif route.kind == PHP:
        assert inside(root, route.script_filename)
        assert route.script_filename.endswith(".php")
        assert os.path.isfile(route.script_filename)
        assert "?" not in route.script_name and "#" not in route.script_name
    elif route.kind == REDIRECT:
        assert route.location.startswith(b"/")
        assert b"\r" not in route.location and b"\n" not in route.location
    else:
        assert route.status in (400, 403, 404)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=60))
def test_resolve_raw_bytes(root, raw):
    route = resolve(root, b"/" + raw)
    if route.kind == STATIC:
        assert inside(root, route.path)
    elif route.kind == PHP:
        assert inside(root, route.script_filename)
