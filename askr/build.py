"""Build Askr's native parts in place: ``python -m askr.build``.

Two cffi API-mode extensions: the PHP bridge (against the PHP that
``php-config`` reports, or ``$ASKR_PHP_CONFIG``) and the io_uring shim
(against liburing).  Each has its own ``_build.py`` with a ``build()``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

PARTS = {
    "php": "askr.php._build",
    "uring": "askr.uring._build",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m askr.build")
    parser.add_argument("parts", nargs="*", help="php, uring (default: both)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")

    failed = 0
    for name in args.parts or list(PARTS):
        module = importlib.import_module(PARTS[name])
        try:
            path = module.build(verbose=args.verbose)
        except Exception as exc:  # a build error is reported, not a traceback  # noqa: BLE001 - any build failure is reported as a line
            print(f"askr build: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"askr build: {name}: {path}")

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
