"""Askr against nginx + php-fpm, side by side in one run.

    python -m bench.run                      # everything, 3 repeats
    python -m bench.run --quick              # 1 repeat, 2 s per load
                                             # (report in bench/out/)
    python -m bench.run -w hello -w static   # chosen workloads only

Every contender is started here on loopback with config files of its own,
warmed, loaded with wrk (h2load for HTTP/2), stopped; each contender
runs once per round, ``--repeat`` rounds in turn, and the median round
is reported with each round's ratio to the reference.  Results go to
bench/out/results.json and bench/RESULTS.md, with the machine's facts.
Absolute numbers on a shared 2-core machine are noise: read the ratios
against the reference (nginx + php-fpm) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.refserver import NginxFpm, free_port, wait_http

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
DOCROOT = HERE / "docroot"
LARAVEL = TOP / "examples" / "laravel-app"

OPCACHE_INI = {
    "opcache.enable": "1",
    "opcache.enable_cli": "1",
    "opcache.memory_consumption": "128",
    "opcache.validate_timestamps": "0",
    "opcache.jit": "off",
}


@dataclass
class Workload:
    name: str
    path: str
    app: str            # "docroot" or "laravel"
    php: bool = True
    expect: str = ""    # a substring the body must contain
    proto: str = "h1"   # "h1", "h1s" (HTTPS/1.1, wrk) or "h2s" (h2load)

    @property
    def tls(self) -> bool:
        return self.proto != "h1"


WORKLOADS = {
    "hello": Workload("hello", "/hello.php", "docroot", expect="Hello"),
    "static": Workload("static", "/static-100k.bin", "docroot", php=False),
    "laravel-text": Workload("laravel-text", "/text", "laravel"),
    "laravel-json": Workload("laravel-json", "/json", "laravel"),
    "laravel-db": Workload("laravel-db", "/db", "laravel"),
    "laravel-blade": Workload("laravel-blade", "/blade", "laravel"),
    "laravel-session": Workload("laravel-session", "/session", "laravel"),
    "https-h1": Workload("https-h1", "/hello.php", "docroot", expect="Hello",
                         proto="h1s"),
    "https-h2": Workload("https-h2", "/hello.php", "docroot", expect="Hello",
                         proto="h2s"),
}


def bench_cert() -> tuple[str, str]:
    """A self-signed pair for the HTTPS workloads, made once per run."""
    from askr.certs import generate

    out = HERE / "out" / "cert"
    if not (out / "cert.pem").exists():
        generate(out, ["localhost", "127.0.0.1"])
    return str(out / "cert.pem"), str(out / "key.pem")


@dataclass
class Result:
    contender: str
    workload: str
    connections: int
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    runs: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    note: str = ""


# -- contenders ---------------------------------------------------------

class Reference:
    """nginx + php-fpm with opcache, as many PHP children as Askr workers."""

    name = "nginx+php-fpm"

    def __init__(self, workload: Workload, workers: int) -> None:
        self.workload, self.workers = workload, workers

    def start(self) -> str:
        # A fresh pair (config files, port) each round: stop() removes
        # the previous one's directory.
        workload = self.workload
        root = DOCROOT if workload.app == "docroot" else LARAVEL / "public"
        cert, key = bench_cert() if workload.tls else (None, None)
        # nginx itself as Debian ships it: `worker_processes auto` (one
        # per core), so TLS and HTTP/2 are not held to one nginx core.
        self.server = NginxFpm(root, children=self.workers,
                               php_ini=OPCACHE_INI,
                               nginx_workers=os.cpu_count() or 1,
                               cert=cert, key=key,
                               http2=workload.proto == "h2s")
        self.server.start()
        return self.server.url

    def pids(self) -> list[int]:
        return self.server.pids()

    def stop(self) -> None:
        self.server.stop()


class Subprocess:
    """A server started as one command; every process in its session counts."""

    name = "?"
    tls = False

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def start(self) -> str:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="askr-bench-"))
        self.log = open(self.tmp / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command(self.port), stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=TOP)
        try:
            wait_http("127.0.0.1", self.port, "/", timeout=60, tls=self.tls)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.tail()}")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def tail(self) -> str:
        try:
            return (self.tmp / "server.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def pids(self) -> list[int]:
        import psutil

        try:
            top = psutil.Process(self.proc.pid)
            return [top.pid] + [c.pid for c in top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Askr(Subprocess):
    def __init__(self, workload: Workload, workers: int, mode: str,
                 io: str) -> None:
        self.workload, self.workers, self.mode, self.io = workload, workers, \
            mode, io
        self.name = f"askr-{mode}-{io}"
        self.tls = workload.tls

    def command(self, port: int) -> list[str]:
        ini = "\n".join(f"{k}={v}" for k, v in OPCACHE_INI.items())
        ini = "zend_extension=opcache.so\n" + ini
        if self.workload.app == "docroot":
            root, script, base = DOCROOT, DOCROOT / "hello-worker.php", DOCROOT
        else:
            root = LARAVEL / "public"
            script = TOP / "examples" / "laravel-worker.php"
            base = LARAVEL
        plain = free_port() if self.tls else port
        lines = [
            "[server]",
            f'listen = ["127.0.0.1:{plain}"]',
            f'root = "{root}"',
            f"workers = {self.workers}",
            f'io = "{self.io}"',
            "[admin]",
            f'listen = "127.0.0.1:{free_port()}"',
            "[log]",
            "access = false",
            'level = "warning"',
            "[worker]",
            f"ini = '''\n{ini}\n'''",
        ]
        if self.mode == "worker":
            lines += [f'script = "{script}"', f'app_base = "{base}"']
        if self.tls:
            cert, key = bench_cert()
            lines += ["[tls]", f'listen = ["127.0.0.1:{port}"]',
                      f'cert = "{cert}"', f'key = "{key}"']
        conf = self.tmp / "askr.toml"
        conf.write_text("\n".join(lines) + "\n")
        askr = shutil.which("askr") or str(Path(sys.executable).parent / "askr")
        return [askr, "serve", "--config", str(conf)]


class PhpBuiltin(Subprocess):
    """PHP's built-in server: one process, one connection at a time, so
    wrk's other 63 connections at c=64 time out or are reset (errors)."""

    name = "php -S"
    note = "one process, one connection at a time: c=64 errors are expected"

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    def command(self, port: int) -> list[str]:
        args = []
        for k, v in OPCACHE_INI.items():
            args += ["-d", f"{k}={v}"]
        return ["php", *args, "-S", f"127.0.0.1:{port}", "-t", str(DOCROOT)]


def contenders(workload: Workload, workers: int, only: list[str]) -> list:
    out: list = [Reference(workload, workers)]
    for mode in ("worker", "classic"):
        for io in ("uring", "epoll"):
            out.append(Askr(workload, workers, mode, io))
    if workload.name == "hello":
        out.append(PhpBuiltin(workload))
    if only:
        out = [c for c in out if c.name == Reference.name or
               any(o in c.name for o in only)]
    return out


# -- load ---------------------------------------------------------------

def parse_duration_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return 0.0
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": parse_duration_ms(p50.group(1)) if p50 else 0.0,
        "p99_ms": parse_duration_ms(p99.group(1)) if p99 else 0.0,
        "errors": errors,
    }


def run_wrk(url: str, connections: int, seconds: float) -> dict:
    threads = min(2, connections)
    # wrk takes whole seconds only: "-d1.5s" prints its usage and exits.
    cmd = ["wrk", f"-t{threads}", f"-c{connections}",
           f"-d{max(1, round(seconds))}s", "--latency", url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          timeout=seconds + 60)
    if "Requests/sec" not in done.stdout:
        raise RuntimeError(f"wrk gave no result: {(done.stdout + done.stderr)[:300]}")
    return parse_wrk(done.stdout)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[i]


def parse_h2load(out: str, log: Path) -> dict:
    """req/s and errors from h2load's summary; p50/p99 from its per-request
    log (tab-separated: start µs, status, duration µs)."""
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    reqs = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                     r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                     r"(\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                      r"(\d+) 5xx", out)
    errors = 0
    if reqs:
        errors += int(reqs.group(5)) + int(reqs.group(6)) + int(reqs.group(7))
    if codes:
        errors += int(codes.group(3)) + int(codes.group(4))
    durations = []
    try:
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                durations.append(int(parts[2]) / 1000.0)
    except OSError:
        pass
    durations.sort()
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": percentile(durations, 0.50),
        "p99_ms": percentile(durations, 0.99),
        "errors": errors,
    }


def run_h2load(url: str, connections: int, seconds: float) -> dict:
    """HTTP/2 over TLS: `connections` concurrent streams, spread over at
    most 8 connections (c=64 is 8 connections × 8 streams)."""
    conns = min(connections, 8)
    streams = max(1, connections // conns)
    with tempfile.NamedTemporaryFile(prefix="askr-h2load-") as log:
        cmd = ["h2load", f"-t{min(2, conns)}", f"-c{conns}", f"-m{streams}",
               f"-D{seconds:g}", "--log-file", log.name, url]
        out = subprocess.run(cmd, capture_output=True, text=True,
                             check=False, timeout=seconds + 60).stdout
        return parse_h2load(out, Path(log.name))


def run_load(workload: Workload, url: str, connections: int,
             seconds: float) -> dict:
    if workload.proto == "h2s":
        return run_h2load(url, connections, seconds)
    return run_wrk(url, connections, seconds)


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) of the processes, in MB.  RSS counts pages shared
    between processes (libraries, opcache, pages inherited over fork)
    once per process; PSS splits them, so its sum is what the server
    really holds."""
    import psutil

    rss = pss = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", 0)
    return rss / 1e6, pss / 1e6


def check_body(url: str, expect: str) -> None:
    import ssl
    import urllib.request

    ctx = ssl._create_unverified_context()  # the run's own self-signed cert
    with urllib.request.urlopen(url, timeout=10, context=ctx) as resp:
        body = resp.read()
    if expect and expect.encode() not in body:
        raise RuntimeError(f"{url}: body lacks {expect!r}: {body[:200]!r}")


def clear_sessions(workload: Workload) -> None:
    """Start every Laravel contender with a new, empty session directory.

    Each request without a cookie writes a new session file, and Laravel's
    garbage collector (2 requests in 100) lists the whole directory.  An
    ext4 directory never shrinks: after 47,000 files were deleted from
    it, creating a session still cost /text 893 us a request instead of
    478 us (bench/laravel_ceiling.php).  Left alone, every contender
    would run slower than the one before it.
    """
    if workload.app != "laravel":
        return
    sessions = LARAVEL / "storage" / "framework" / "sessions"
    old = sessions.with_name("sessions.old")
    shutil.rmtree(old, ignore_errors=True)
    st = sessions.stat()
    sessions.rename(old)
    sessions.mkdir()
    sessions.chmod(st.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(sessions, st.st_uid, st.st_gid)
    keep = old / ".gitignore"
    if keep.exists():
        shutil.copy2(keep, sessions / ".gitignore")
    shutil.rmtree(old, ignore_errors=True)


def load_once(contender, workload: Workload, conns: list[int],
              seconds: float) -> dict[int, dict]:
    """Start, check, warm, load at each concurrency, stop: one round."""
    clear_sessions(workload)
    base = contender.start()
    try:
        url = base + workload.path
        check_body(url, workload.expect)
        run_load(workload, url, max(conns), min(seconds, 2))   # warm-up
        out = {c: run_load(workload, url, c, seconds) for c in conns}
        rss, pss = memory_mb(contender.pids())
        for run in out.values():
            run["rss_mb"], run["pss_mb"] = rss, pss
        return out
    finally:
        contender.stop()


def measure(workload: Workload, contenders: list, conns: list[int],
            seconds: float, repeat: int) -> list[Result]:
    """Every contender once per round, rounds in turn.

    Interleaving puts a slow spell of a shared machine on several
    contenders rather than on all repeats of one, so the ratios of a round
    (each contender against the reference of the same round) stay
    comparable.  The starting contender rotates from round to round.
    """
    runs: dict[tuple[str, int], list[dict]] = {}
    notes: dict[str, str] = {}
    for r in range(repeat):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for contender in order:
            print(f"bench: {workload.name}: {contender.name} (round {r + 1})",
                  file=sys.stderr)
            try:
                got = load_once(contender, workload, conns, seconds)
            except Exception as exc:  # noqa: BLE001 - a failed contender is a row
                notes[contender.name] = f"failed: {exc}"[:300]
                continue
            for c, run in got.items():
                runs.setdefault((contender.name, c), []).append(
                    dict(run, round=r))

    results = []
    for contender in contenders:
        for c in conns:
            done = runs.get((contender.name, c), [])
            if not done:
                results.append(Result(contender.name, workload.name, c,
                                      note=notes.get(contender.name, "")))
                continue
            mid = sorted(done, key=lambda x: x["rps"])[len(done) // 2]
            note = notes.get(contender.name, "")
            if c > 1 and not note:
                note = getattr(contender, "note", "")
            results.append(Result(
                contender.name, workload.name, c, rps=mid["rps"],
                p50_ms=mid["p50_ms"], p99_ms=mid["p99_ms"],
                errors=sum(x["errors"] for x in done),
                rss_mb=mid["rss_mb"], pss_mb=mid["pss_mb"],
                runs=[x["rps"] for x in done],
                rounds=[x["round"] for x in done],
                note=note))
    return results


# -- report -------------------------------------------------------------

def machine_facts() -> dict:
    def first_line(cmd: list[str]) -> str:
        # nginx -v prints on stderr; the others on stdout.
        try:
            done = subprocess.run(cmd, capture_output=True, text=True,
                                  check=False, timeout=10)
            return (done.stdout or done.stderr).splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "php": first_line(["php", "-v"]),
        "nginx": first_line(["nginx", "-v"]) or "?",
        "wrk": first_line(["wrk", "-v"]),
        "h2load": first_line(["h2load", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def round_ratios(r: Result, ref: Result | None) -> list[float]:
    """r's req/s over the reference's, round by round."""
    if ref is None:
        return []
    ref_by_round = dict(zip(ref.rounds, ref.runs))
    return [rps / ref_by_round[rnd] for rnd, rps in zip(r.rounds, r.runs)
            if ref_by_round.get(rnd)]


def spread(values: list[float]) -> float | None:
    """(max - min) / median, or None with fewer than two values."""
    if len(values) < 2:
        return None
    mid = sorted(values)[len(values) // 2]
    return (max(values) - min(values)) / mid if mid else None


def markdown(results: list[Result], facts: dict, args: argparse.Namespace) -> str:
    ref = {(r.workload, r.connections): r for r in results
           if r.contender == Reference.name}
    lines = [
        "# Benchmark results",
        "",
        ("Produced by `python -m bench.run` "
        f"(`--seconds {args.seconds} --repeat {args.repeat}`); "
        "do not edit by hand."),
        "",
        "| fact | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        ("Each round starts and loads every contender once; a row's "
        "req/s, p50 and p99 are its median round's. \"× ref\" is the "
        "median req/s over the reference's; \"× ref by round\" divides "
        "each round by the reference's same round, and \"spread\" is "
        "(max − min) / median of those."),
        "",
        ("| workload | conns | contender | req/s | p50 ms | p99 ms | errors "
         "| RSS MB | PSS MB | × ref | × ref by round | spread | runs (req/s) "
         "| note |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    spreads: list[tuple[float, str]] = []
    for r in results:
        base = ref.get((r.workload, r.connections))
        is_ref = r.contender == Reference.name
        ratio = f"{r.rps / base.rps:.2f}" if base and base.rps and r.rps else "-"
        by_round = [] if is_ref else round_ratios(r, base)
        sp = spread(by_round)
        if sp is not None and r.contender.startswith("askr"):
            spreads.append((sp, f"{r.workload} c={r.connections} {r.contender}"))
        runs = " / ".join(f"{x:.0f}" for x in r.runs)
        lines.append(
            f"| {r.workload} | {r.connections} | {r.contender} | {r.rps:.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | {r.rss_mb:.0f} "
            f"| {r.pss_mb:.0f} "
            f"| {ratio} | {' / '.join(f'{x:.2f}' for x in by_round) or '-'} "
            f"| {'-' if sp is None else f'{sp:.0%}'} | {runs} | {r.note} |")
    if spreads:
        within = sum(1 for sp, _ in spreads if sp <= 0.10)
        widest = max(spreads)
        lines += [
            "",
            (f"Askr rows whose ratio to the reference stayed within 10% "
            f"across rounds: {within} of {len(spreads)}; widest: "
            f"{widest[1]}, {widest[0]:.0%}."),
        ]
    return "\n".join(lines) + "\n"


def prepare_docroot() -> None:
    blob = DOCROOT / "static-100k.bin"
    if not blob.exists() or blob.stat().st_size != 100 * 1024:
        blob.write_bytes(os.urandom(100 * 1024))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("-w", "--workload", action="append",
                        choices=sorted(WORKLOADS))
    parser.add_argument("-c", "--contender", action="append", default=[],
                        help="substring of contender names to keep "
                             "(the reference always runs)")
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat of 2 s: a smoke run, not a result")
    parser.add_argument("--out", default=None,
                        help="Markdown report (default bench/RESULTS.md; "
                             "bench/out/RESULTS-quick.md with --quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeat = 2, 1
    if args.out is None:
        # A smoke run never replaces the committed results.
        args.out = str(HERE / "out" / "RESULTS-quick.md" if args.quick
                       else HERE / "RESULTS.md")

    prepare_docroot()
    conns = [int(c) for c in args.connections.split(",")]
    results: list[Result] = []
    for name in args.workload or list(WORKLOADS):
        workload = WORKLOADS[name]
        results.extend(measure(
            workload, contenders(workload, args.workers, args.contender),
            conns, args.seconds, args.repeat))

    facts = machine_facts()
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "results.json").write_text(json.dumps(
        {"facts": facts, "results": [asdict(r) for r in results]}, indent=2))
    report = markdown(results, facts, args)
    Path(args.out).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
