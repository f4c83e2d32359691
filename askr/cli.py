"""The `askr` command: serve, config-check, doctor, cert, reload, version.

Command-line flags for `serve` are generated from config.SETTINGS, so a
setting gains its flag by naming one in the table.  A flag value is read as
a TOML scalar ("4" is an int, "true" a bool, anything else a string) and
then validated exactly like the same value in askr.toml.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from askr import __version__, config, errors

logger = logging.getLogger(__name__)


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        return text


def _add_setting_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("settings (override the config file)")
    for s in config.SETTINGS:
        if not s.flag:
            continue
        doc = s.doc.replace("%", "%%")
        if s.check is config._bool:
            group.add_argument(s.flag, dest=s.key, default=None,
                               action=argparse.BooleanOptionalAction, help=doc)
        elif s.name == "listen" and s.section != "admin":
            group.add_argument(s.flag, dest=s.key, action="append", metavar="ADDR",
                               help=doc + " (repeatable)")
        else:
            group.add_argument(s.flag, dest=s.key, metavar=s.name.upper(),
                               type=str if s.path else _scalar, help=doc)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = vars(args)
    return {s.key: given[s.key] for s in config.SETTINGS
            if s.flag and given.get(s.key) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="askr", description="PHP and Laravel application server "
        "(io_uring workers, embedded PHP)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--config", "-c", metavar="FILE",
                   help="askr.toml (default: the bundled demo when no flag is "
                   "given, else built-in defaults)")
    _add_setting_flags(p)

    p = sub.add_parser("config-check", help="validate a config without serving")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--show", action="store_true",
                   help="print every resolved setting, sorted")
    p.add_argument("--no-bind", dest="bind", action="store_false",
                   help="skip the listen-port checks")

    p = sub.add_parser("doctor", help="check this host can serve")
    p.add_argument("--config", "-c", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("cert", help="write a self-signed development certificate")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("hosts", nargs="+", metavar="HOST")

    p = sub.add_parser("reload", help="ask a running server to reload workers")
    p.add_argument("--config", "-c", metavar="FILE",
                   help="read the admin address from this file")
    p.add_argument("--admin", metavar="HOST:PORT",
                   help="admin address (default 127.0.0.1:9180)")
    p.add_argument("--canary", default=None,
                   action=argparse.BooleanOptionalAction)

    sub.add_parser("settings", help="print every askr.toml setting (Markdown)")
    sub.add_parser("version", help="print the version")
    return parser


def _print_problems(problems: Sequence[errors.Problem]) -> None:
    for p in problems:
        print(p, file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    path = args.config
    if path is None and not overrides and config.DEMO_CONFIG.exists():
        path = str(config.DEMO_CONFIG)
        print(f"askr: no --config given, serving the demo {path}",
              file=sys.stderr)
    cfg = config.load(path, overrides)
    for warning in cfg.warnings:
        logger.warning("config %s", warning)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=cfg.log.level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s "
                            "%(message)s")
    from askr import serve  # imported late: it pulls in the native parts

    return int(serve.run(cfg))


def _extension_dir() -> str | None:
    from askr import doctor

    php, _ = doctor.gather_php()
    return php.get("extension_dir") if php else None


def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    problems = list(cfg.warnings)
    # Asking PHP for its extension dir loads libphp: only when ini needs it.
    ext_dir = _extension_dir() if config.ini_extensions(cfg.worker.ini) else None
    problems += config.check(cfg, extension_dir=ext_dir, bind=args.bind)
    _print_problems(problems)
    bad = [p for p in problems if p.severity == "error"]
    if bad:
        print(f"{args.file}: {len(bad)} error(s), "
              f"{len(problems) - len(bad)} warning(s)", file=sys.stderr)
        return errors.CONFIG_INVALID

    if args.show:
        for key, value in cfg.items():
            if isinstance(value, tuple):
                value = ", ".join(str(v) for v in value)
            print(f"{key} = {value}")
    listeners = [str(a) for a in cfg.server.listen]
    listeners += [f"https://{a}" for a in cfg.tls.listen]
    warned = f", {len(problems)} warning(s)" if problems else ""
    print(f"{args.file}: OK, {cfg.mode} mode, {cfg.server.workers} workers, "
          f"listen {' '.join(listeners) or '-'}, "
          f"admin {cfg.admin.listen or 'off'}{warned}")
    return errors.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from askr import doctor

    return doctor.main(args.config, args.json)


def cmd_cert(args: argparse.Namespace) -> int:
    from askr import certs

    cert, key = certs.generate(args.out, args.hosts, days=args.days)
    print(f"wrote {cert} and {key} (self-signed, {args.days} days, "
          f"SAN: {', '.join(args.hosts)})")
    print(f'use in askr.toml:\n[tls]\ncert = "{cert}"\nkey = "{key}"\nlisten = '
          '["127.0.0.1:8443"]')
    return errors.OK


def cmd_reload(args: argparse.Namespace) -> int:
    admin = args.admin
    if admin is None:
        cfg = config.load(args.config)
        if cfg.admin.listen is None:
            print(f"askr: the admin API is disabled in {args.config}",
                  file=sys.stderr)
            return errors.FAILURE
        admin = str(cfg.admin.listen)
    url = f"http://{admin}/api/reload"
    if args.canary is not None:
        url += f"?canary={int(args.canary)}"
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        text = body.decode(errors="replace")
        print(f"askr: reload refused ({exc.code}): {text}", file=sys.stderr)
        return errors.FAILURE
    except OSError as exc:
        print(f"askr: cannot reach the admin API at {url}: {exc}",
              file=sys.stderr)
        return errors.FAILURE
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        print(body.decode(errors="replace"))
    return errors.OK


COMMANDS = {
    "serve": cmd_serve,
    "config-check": cmd_config_check,
    "doctor": cmd_doctor,
    "cert": cmd_cert,
    "reload": cmd_reload,
    "settings": lambda args: print(config.reference()) or errors.OK,
    "version": lambda args: print(f"askr {__version__}") or errors.OK,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except errors.ConfigError as exc:
        _print_problems(exc.problems)
        return exc.exit_code
    except errors.HaltServer as exc:
        print(f"askr: halted: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
