"""Docroot resolution: static, PHP with PATH_INFO, front controller,
directories, and every refusal."""

import os

import pytest

from askr.http.docroot import PHP, REDIRECT, REFUSE, STATIC, resolve, split_target


@pytest.fixture
def root(tmp_path):
    """A small Laravel-like public/ tree plus things outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    pub = tmp_path / "public"
    pub.mkdir()
    (pub / "index.php").write_text("<?php echo 'front';")
    (pub / "info.php").write_text("<?php phpinfo();")
    (pub / "robots.txt").write_text("User-agent: *")
    (pub / "café.txt").write_text("utf8 name")
    (pub / "old.phtml").write_text("<?php ?>")
    (pub / "Upper.PHP").write_text("<?php ?>")
    (pub / ".env").write_text("APP_KEY=x")
    (pub / ".git").mkdir()
    (pub / ".git" / "config").write_text("[core]")
    (pub / ".well-known").mkdir()
    (pub / ".well-known" / "acme").write_text("token")
    (pub / "css").mkdir()
    (pub / "css" / "app.css").write_text("body{}")
    (pub / "docs").mkdir()
    (pub / "docs" / "index.html").write_text("<h1>docs</h1>")
    (pub / "admin").mkdir()
    (pub / "admin" / "index.php").write_text("<?php ?>")
    (pub / "admin" / "tool.php").write_text("<?php ?>")
    (pub / "empty").mkdir()
    (pub / "dir.php").mkdir()
    os.symlink(outside / "secret.txt", pub / "leak.txt")
    os.symlink(outside, pub / "leakdir")
    os.symlink(pub / "css" / "app.css", pub / "inside.css")
    os.symlink(pub / "css", pub / "styles")
    os.symlink("../../outside/secret.txt", pub / "css" / "rel.txt")
    return os.path.realpath(pub)


def test_static_file(root):
    r = resolve(root, b"/robots.txt")
    assert r.kind == STATIC
    assert r.path == root + "/robots.txt"
    assert r.stat.st_size == len("User-agent: *")


def test_static_file_nested_with_query(root):
    r = resolve(root, b"/css/app.css?v=3")
    assert r.kind == STATIC and r.path == root + "/css/app.css"


def test_static_utf8_name(root):
    r = resolve(root, b"/caf%C3%A9.txt")
    assert r.kind == STATIC and r.path.endswith("/café.txt")


def test_merged_slashes(root):
    assert resolve(root, b"//css///app.css").kind == STATIC


def test_php_script_direct(root):
    r = resolve(root, b"/info.php?a=1")
    assert r.kind == PHP
    assert r.script_filename == root + "/info.php"
    assert r.script_name == "/info.php"
    assert r.path_info == ""
    assert r.document_uri == "/info.php"
    assert r.query == b"a=1"


def test_php_path_info(root):
    r = resolve(root, b"/admin/tool.php/users/42/?x=/y.php/z")
    assert r.kind == PHP
    assert r.script_name == "/admin/tool.php"
    assert r.path_info == "/users/42/"
    assert r.document_uri == "/admin/tool.php/users/42/"
    assert r.query == b"x=/y.php/z"


def test_php_path_info_is_decoded(root):
    r = resolve(root, b"/info.php/a%20b")
    assert r.path_info == "/a b"


def test_query_never_splits_script(root):
    r = resolve(root, b"/nothing?file=/info.php/x")
    assert r.kind == PHP and r.script_name == "/index.php"
    assert r.path_info == "" and r.query == b"file=/info.php/x"


def test_missing_php_is_404(root):
    r = resolve(root, b"/missing.php")
    assert (r.kind, r.status) == (REFUSE, 404)
    assert resolve(root, b"/missing.php/extra").status == 404


def test_php_named_directory_is_404(root):
    assert resolve(root, b"/dir.php").status == 404


def test_front_controller_fallback(root):
    r = resolve(root, b"/users/42/edit?tab=1")
    assert r.kind == PHP
    assert r.script_filename == root + "/index.php"
    assert r.script_name == "/index.php"
    assert r.document_uri == "/index.php"
    assert r.path_info == ""
    assert r.query == b"tab=1"


def test_no_front_controller_is_404(root):
    os.unlink(root + "/index.php")
    r = resolve(root, b"/users")
    assert (r.kind, r.status) == (REFUSE, 404)


def test_root_serves_index_php(root):
    r = resolve(root, b"/")
    assert r.kind == PHP and r.script_name == "/index.php"


def test_directory_redirects_to_slash(root):
    r = resolve(root, b"/docs?x=1")
    assert (r.kind, r.status) == (REDIRECT, 301)
    assert r.location == b"/docs/?x=1"


def test_directory_serves_index_html(root):
    r = resolve(root, b"/docs/")
    assert r.kind == STATIC and r.path == root + "/docs/index.html"


def test_directory_prefers_index_php(root):
    r = resolve(root, b"/admin/")
    assert r.kind == PHP and r.script_name == "/admin/index.php"


def test_directory_without_index_is_403(root):
    assert resolve(root, b"/empty/").status == 403


def test_file_with_trailing_slash_goes_to_front_controller(root):
    r = resolve(root, b"/robots.txt/")
    assert r.kind == PHP and r.script_name == "/index.php"


def test_symlink_inside_root_is_followed(root):
    r = resolve(root, b"/inside.css")
    assert r.kind == STATIC and r.path == root + "/css/app.css"
    assert resolve(root, b"/styles/app.css").kind == STATIC


def test_absolute_form_target(root):
    r = resolve(root, b"http://example.org/robots.txt?q")
    assert r.kind == STATIC
    assert split_target(b"https://h?x=1") == (b"/", b"x=1")
    assert split_target(b"http://h") == (b"/", b"")


def test_fragment_is_dropped(root):
    assert resolve(root, b"/robots.txt#frag").kind == STATIC


def test_well_known_is_allowed(root):
    r = resolve(root, b"/.well-known/acme")
    assert r.kind == STATIC


@pytest.mark.parametrize(("target", "status"), [
    # dotfiles and hidden directories
    (b"/.env", 404),
    (b"/.git/config", 404),
    (b"/css/.hidden", 404),
    (b"/%2eenv", 404),
    (b"/.well-known/.secret", 404),
    (b"/x/.well-known/acme", 404),
    (b"/index.php/.git", 404),
    # traversal, raw and encoded
    (b"/../outside/secret.txt", 400),
    (b"/css/../../outside/secret.txt", 400),
    (b"/%2e%2e/outside/secret.txt", 400),
    (b"/%2E%2E%2Foutside%2Fsecret.txt", 404),
    (b"/css/./app.css", 400),
    # encoded slash never becomes a separator
    (b"/css%2fapp.css", 404),
    (b"/info.php%2Fextra", 404),
    # NUL and broken escapes
    (b"/robots.txt%00.php", 400),
    (b"/index.php%00", 400),
    (b"/a%zz", 400),
    (b"/a%4", 400),
    (b"/a%", 400),
    # overlong and invalid UTF-8
    (b"/%c0%ae%c0%ae/outside/secret.txt", 400),
    (b"/%c0%af", 400),
    (b"/%e0%80%ae", 400),
    (b"/%ff", 400),
    (b"/%ed%a0%80", 400),
    # symlinks leaving the root
    (b"/leak.txt", 404),
    (b"/leakdir/secret.txt", 404),
    (b"/css/rel.txt", 404),
    # PHP source never served as a file
    (b"/old.phtml", 404),
    (b"/Upper.PHP", 404),
    # no path form
    (b"*", 400),
    (b"example.org:443", 400),
])
def test_refusals(root, target, status):
    r = resolve(root, target)
    assert (r.kind, r.status) == (REFUSE, status), r


def test_root_given_with_trailing_slash(root):
    assert resolve(root + "/", b"/robots.txt").path == root + "/robots.txt"


def test_nothing_is_cached(root):
    assert resolve(root, b"/new.txt").kind == PHP
    with open(root + "/new.txt", "w") as f:
        f.write("now")
    assert resolve(root, b"/new.txt").kind == STATIC
    os.unlink(root + "/new.txt")
    assert resolve(root, b"/new.txt").kind == PHP


def test_only_the_target_parse_is_kept_and_it_stays_bounded(root, tmp_path):
    """resolve() keeps what it made of a target's bytes (split, decoding,
    segment checks), never what it found on disk or under which root."""
    from askr.http import docroot

    other = tmp_path / "other"
    other.mkdir()
    (other / "robots.txt").write_text("other")
    for _ in range(2):
        assert resolve(root, b"/robots.txt").path == root + "/robots.txt"
        assert resolve(str(other), b"/robots.txt").path == str(other) + "/robots.txt"
        route = resolve(root, b"/admin/tool.php/x/y?q=1")
        assert (route.script_name, route.path_info, route.query) == (
            "/admin/tool.php", "/x/y", b"q=1")
        assert resolve(root, b"/../etc/passwd").status == 400
    for i in range(docroot._PARSED_MAX + 10):
        resolve(root, b"/robots.txt?v=%d" % i)
    assert len(docroot._parsed) <= docroot._PARSED_MAX
