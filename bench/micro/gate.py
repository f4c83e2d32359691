"""Performance regression gate over the micro benchmarks.

    python -m bench.micro.gate             # run, compare with the baseline
    python -m bench.micro.gate --update    # run, write bench/baseline.json

Each case's fastest round is divided by the calibration case's from the
same session; each case keeps its best ratio over ``--runs`` sessions (3),
and the gate fails when it is more than ``--tolerance`` (15 %) above its
ratio in bench/baseline.json.  Ratios, not times: the
machine's speed and load cancel out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = HERE.parent / "baseline.json"
CALIBRATION = "test_calibration"


def run_cases(extra: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               str(HERE / "test_micro.py"), f"--benchmark-json={out}",
               "--benchmark-min-rounds=20", *extra]
        proc = subprocess.run(cmd, cwd=HERE.parent.parent, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"gate: benchmark run failed ({proc.returncode})")
        data = json.loads(out.read_text())
    # The minimum: the least disturbed round, the steadiest on a busy box.
    return {b["name"]: b["stats"]["min"] for b in data["benchmarks"]}


def ratios(medians: dict[str, float]) -> dict[str, float]:
    base = medians[CALIBRATION]
    return {name: m / base for name, m in medians.items() if name != CALIBRATION}


def compare(baseline: dict[str, float], fresh: dict[str, float],
            tolerance: float) -> list[str]:
    failures = []
    print(f"{'case':48} {'baseline':>9} {'now':>9} {'change':>8}")
    for name, now in sorted(fresh.items()):
        ref = baseline.get(name)
        if ref is None:
            print(f"{name:48} {'-':>9} {now:9.2f}      new")
            continue
        change = now / ref - 1
        flag = "  SLOWER" if change > tolerance else ""
        print(f"{name:48} {ref:9.2f} {now:9.2f} {change:+8.1%}{flag}")
        if change > tolerance:
            failures.append(f"{name}: {change:+.1%} against the baseline")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro.gate")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--tolerance", type=float, default=0.15)
    parser.add_argument("--runs", type=int, default=3,
                        help="sessions to run; each case keeps its best "
                             "ratio, so one disturbed session cannot fail "
                             "the gate")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)

    fresh: dict[str, float] = {}
    for _ in range(args.runs):
        for name, ratio in ratios(run_cases(args.pytest_args)).items():
            fresh[name] = min(ratio, fresh.get(name, ratio))
    if args.update:
        BASELINE.write_text(json.dumps(
            {"calibration": CALIBRATION, "ratios": fresh}, indent=2) + "\n")
        print(f"gate: wrote {BASELINE}")
        return 0

    baseline = json.loads(BASELINE.read_text())["ratios"]
    failures = compare(baseline, fresh, args.tolerance)
    if failures:
        print("gate: FAILED\n  " + "\n  ".join(failures))
        return 1
    print("gate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
