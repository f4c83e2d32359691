"""Differential test: the embedded bridge answers like php-cgi.

Every request of tests/php_corpus/cases.py is run twice with the same CGI
variables (askr.php.environ.build), the same body and the same ini:

* reference: /usr/bin/php-cgi, one process per request, variables as its
  environment, body on stdin, CGI output parsed into status/headers/body;
* Askr: tests/bridge_runner.py, one long-lived process calling
  bridge.run_script() for each request (restarted if PHP kills it; the case
  that killed it fails).

Compared: the status code, the body byte for byte, and every response
header in order.  Header names are compared case-insensitively (HTTP says
they are; PHP's own default is spelled "Content-type"); values exactly.
Nothing else is ignored: PHP adds no Date header, and both sides are the
same PHP build, so X-Powered-By must agree too.

The scripts print stable facts (sizes, md5 sums, error codes) instead of
temp paths and times.  php-cgi's answer is also checked against each
case's expectations, so the corpus proves what it exercises on its own.

When askr.php.bridge cannot be imported (the native module is not built),
the bridge half skips with "bridge not built"; any other failure fails.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from askr.php import environ

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "php_corpus"
RUNNER = Path(__file__).resolve().parent / "bridge_runner.py"
PHP_CGI = shutil.which("php-cgi") or "/usr/bin/php-cgi"
JOB_TIMEOUT = 60.0


def _load_cases() -> Any:
    path = CORPUS / "cases.py"
    spec = importlib.util.spec_from_file_location("askr_php_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_cases()
CASES = corpus.CASES


OPCACHE_LINES = [
    "zend_extension=opcache.so",
    "opcache.enable=1",
    "opcache.enable_cli=1",
    "opcache.validate_timestamps=1",
    "opcache.revalidate_freq=0",
]


def ini_lines(tmp: Path, variant: str = "plain") -> list[str]:
    """The ini both sides run with: production-like, every relevant key set.

    The "opcache" variant loads OPcache, as production runs, on both sides.
    """
    extra = OPCACHE_LINES if variant == "opcache" else []
    return extra + [
        "expose_php=1",
        "display_errors=0",
        "display_startup_errors=0",
        "log_errors=1",
        "html_errors=0",
        "error_reporting=32767",
        "output_buffering=4096",
        "implicit_flush=0",
        "zlib.output_compression=0",
        "variables_order=GPCS",
        "request_order=GP",
        "register_argc_argv=0",
        "auto_globals_jit=1",
        "short_open_tag=0",
        "default_charset=UTF-8",
        "precision=14",
        "serialize_precision=-1",
        "memory_limit=128M",
        "max_execution_time=30",
        "max_input_time=-1",
        "max_input_vars=1000",
        "max_input_nesting_level=64",
        "enable_post_data_reading=1",
        "file_uploads=1",
        "upload_max_filesize=64M",
        "post_max_size=64M",
        "max_file_uploads=20",
        f"upload_tmp_dir={tmp / 'uploads'}",
        f"sys_temp_dir={tmp / 'sys'}",
        "user_ini.filename=",
        "date.timezone=UTC",
        "zend.assertions=1",
        "session.save_handler=files",
        f"session.save_path={tmp / 'sessions'}",
        "session.name=PHPSESSID",
        "session.use_cookies=1",
        "session.use_only_cookies=1",
        "session.use_strict_mode=0",
        "session.cache_limiter=nocache",
        "session.gc_probability=0",
        "session.auto_start=0",
        "session.cookie_path=/",
    ]


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]   # (lower-cased name, value), in order
    body: bytes
    log: str


def _split_header(line: bytes) -> tuple[str, str]:
    name, _, value = line.partition(b":")
    return name.strip().decode("latin-1").lower(), value.strip().decode("latin-1")


def parse_cgi_output(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Split php-cgi's output into status, headers and body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"php-cgi wrote no header block: {raw[:200]!r}"

    status = 200
    headers = []
    for line in head.split(b"\r\n"):
        name, value = _split_header(line)
        if name == "status":
            status = int(value.split()[0])
        else:
            headers.append((name, value))
    return status, headers, body


# --- preparing requests ---------------------------------------------------


@pytest.fixture(scope="module", params=["plain", "opcache"])
def workdir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    tmp = tmp_path_factory.mktemp("php-diff-" + request.param)
    for sub in ("uploads", "sys", "sessions", "bodies"):
        (tmp / sub).mkdir()
    (tmp / "php.ini").write_text("\n".join(ini_lines(tmp, request.param)) + "\n")
    return tmp


@dataclass
class Prepared:
    env: list[tuple[bytes, bytes]]
    body_path: Path | None


def prepare(case: Any, workdir: Path) -> Prepared:
    """Build the CGI variables and write the body (if any) to a file."""
    body = case.make_body()
    headers = list(case.headers)
    body_length = None
    if case.chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
        body_length = len(body)
    elif body or case.method in ("POST", "PUT", "PATCH"):
        headers.append((b"Content-Length", b"%d" % len(body)))

    env = environ.build(
        method=case.method,
        target=case.request_target(),
        protocol="HTTP/1.1",
        headers=headers,
        client=("127.0.0.1", 50123),
        server=("127.0.0.1", 8080),
        server_name="corpus.test",
        https=False,
        document_root=str(CORPUS),
        script_name="/" + case.script,
        script_filename=str(CORPUS / case.script),
        path_info=case.path_info,
        request_time=time.time(),
        software="Askr/corpus",
        body_length=body_length,
    )

    body_path = None
    if body:
        body_path = workdir / "bodies" / (case.name + ".body")
        body_path.write_bytes(body)
    return Prepared(env, body_path)


# --- the reference: php-cgi ------------------------------------------------


def run_php_cgi(prep: Prepared, workdir: Path) -> Response:
    args = [PHP_CGI, "-n"]
    for line in (workdir / "php.ini").read_text().splitlines():
        args += ["-d", line]

    with contextlib.ExitStack() as stack:
        stdin: Any = subprocess.DEVNULL
        if prep.body_path:
            stdin = stack.enter_context(open(prep.body_path, "rb"))
        proc = subprocess.run(
            args, env=dict(prep.env), stdin=stdin, capture_output=True,
            timeout=JOB_TIMEOUT, cwd=str(CORPUS), check=False,
        )

    status, headers, body = parse_cgi_output(proc.stdout)
    return Response(status, headers, body, proc.stderr.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def reference(workdir: Path) -> Iterator[Any]:
    """php-cgi's response per case name, computed once."""
    cache: dict[str, tuple[Prepared, Response]] = {}

    def get(case: Any) -> tuple[Prepared, Response]:
        if case.name not in cache:
            prep = prepare(case, workdir)
            cache[case.name] = (prep, run_php_cgi(prep, workdir))
        return cache[case.name]

    yield get


# --- the bridge, in a runner subprocess -------------------------------------


class RunnerDied(Exception):
    pass


class BridgeRunner:
    """One tests/bridge_runner.py process, restarted after a crash."""

    def __init__(self, ini_path: Path, stderr_path: Path):
        self.ini_path = ini_path
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        self.stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - lives with proc
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(self.ini_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=env, cwd=str(ROOT),
        )
        self.buffer = b""
        hello = self._read_line(JOB_TIMEOUT)
        if "startup_error" in hello:
            raise RunnerDied("bridge.startup failed:\n" + hello["startup_error"])

    def _stderr_tail(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_bytes()[-3000:].decode("utf-8", "replace")

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RunnerDied(f"bridge runner gave no answer in {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                code = self.proc.wait(timeout=10)
                tail = self._stderr_tail()
                self.proc = None
                raise RunnerDied(
                    f"bridge runner died with exit status {code}\n{tail}"
                )
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.proc is None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc.wait(timeout=10)
            self.proc = None
            raise RunnerDied("bridge runner exited before the job:\n"
                             + self._stderr_tail()) from None
        return self._read_line(JOB_TIMEOUT)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)


def _bridge_import_error() -> ImportError | None:
    try:
        from askr.php import bridge  # noqa: F401
    except ImportError as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def runner(workdir: Path) -> Iterator[BridgeRunner]:
    missing = _bridge_import_error()
    if missing is not None:
        pytest.skip(f"bridge not built (ImportError: {missing})")

    r = BridgeRunner(workdir / "php.ini", workdir / "runner.stderr")
    try:
        yield r
    finally:
        r.stop()


def run_bridge(r: BridgeRunner, case: Any, prep: Prepared) -> tuple[Response, Any]:
    job = {
        "id": case.name,
        "env": [[base64.b64encode(n).decode(), base64.b64encode(v).decode()]
                for n, v in prep.env],
        "body_path": str(prep.body_path) if prep.body_path else None,
        "body_mode": case.body_mode,
    }
    result = r.run(job)
    assert result["id"] == case.name
    assert result["error"] is None, "run_script raised:\n" + result["error"]

    sends = result["sends"]
    headers = [
        _split_header(base64.b64decode(h)) for h in (sends[0]["headers"] or [])
    ] if sends else []
    status = sends[0]["status"] if sends else 0
    log = "\n".join(message for _, message in result["logs"])
    return Response(status, headers, base64.b64decode(result["body"]), log), sends


# --- the tests --------------------------------------------------------------


def test_corpus_has_fifty_scripts_all_requested() -> None:
    scripts = {p.name for p in CORPUS.glob("*.php")}
    requested = {case.script for case in CASES}

    assert len(scripts) >= 50
    assert scripts == requested
    assert len({case.name for case in CASES}) == len(CASES)


def test_ini_variant_really_switches_opcache(workdir: Path, reference: Any) -> None:
    case = next(c for c in CASES if c.name == "opcache_loaded")
    with_opcache = "zend_extension=opcache.so" in (workdir / "php.ini").read_text()

    _, ref = reference(case)

    assert ref.body == (b"true true" if with_opcache else b"false false")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_php_cgi_reference_meets_case_expectations(
    case: Any, reference: Any
) -> None:
    _, ref = reference(case)

    assert ref.status == case.expect_status, ref
    for needle in case.expect_in_body:
        assert needle in ref.body, (needle, ref.body[:2000])
    if case.expect_log:
        assert case.expect_log in ref.log, ref.log


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bridge_matches_php_cgi(
    case: Any, reference: Any, runner: BridgeRunner
) -> None:
    prep, ref = reference(case)

    got, sends = run_bridge(runner, case, prep)

    # The job.send() contract of DESIGN.md.
    assert sends, "bridge never called job.send()"
    assert [s["last"] for s in sends] == [False] * (len(sends) - 1) + [True]
    assert sends[0]["headers"] is not None
    assert all(s["headers"] is None for s in sends[1:])
    assert len(sends) >= case.min_sends, sends

    # What the client would see.
    assert got.status == ref.status
    assert got.headers == ref.headers
    if got.body != ref.body:
        pytest.fail(
            f"body differs: bridge {len(got.body)} bytes {got.body[:300]!r}..."
            f" php-cgi {len(ref.body)} bytes {ref.body[:300]!r}..."
        )
    if case.expect_log:
        assert case.expect_log in got.log, got.log
