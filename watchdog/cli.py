"""The command line: argparse → settings → the app. Thin on purpose.

Errors are one sentence on stderr and an exit status from the contract, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from watchdog import __version__, app, unpacking
from watchdog.config import Settings, load_settings
from watchdog.model import COMPONENTS

EXIT_UNUSABLE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rainbond-watchdog",
        description="Self-diagnosis for the Rainbond allinone container (a supervisord eventlistener).",
    )
    parser.add_argument("--version", action="version", version=f"rainbond-watchdog {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="config file (default: $RAINBOND_WATCHDOG_CONFIG, else the packaged conf/watchdog.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("listen", parents=[common], help="run as the supervisord eventlistener")
    p.set_defaults(func=cmd_listen)

    for name, helptext, func in (
        ("status", "show the status file for a person (or --json)", cmd_status),
        ("check", "the same decision as status, silent (Docker HEALTHCHECK)", cmd_check),
    ):
        p = sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--file", metavar="PATH", help="status file (default: status_file from the config)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print the status file as JSON")
        p.set_defaults(func=func)

    # -- explain, rules (issue 3)
    p = sub.add_parser("explain", parents=[common], help="run the log rules over files (- is stdin), offline")
    p.add_argument("--component", choices=COMPONENTS, help="keep the rules for this component (and the host's)")
    p.add_argument("--json", action="store_true", help='print {"problems": [...]} as JSON')
    p.add_argument("files", nargs="+", metavar="FILE", help="log files; - reads stdin")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("rules", parents=[common], help="list the rules in force, or validate rule files")
    p.add_argument("--check", nargs="+", metavar="FILE", help="validate these rule files (exit 2 when invalid)")
    p.set_defaults(func=cmd_rules)

    # -- diagnose (issue 4)
    p = sub.add_parser("diagnose", parents=[common], help="run every check once, now, and print the result")
    p.add_argument("--json", action="store_true", help="print the result in the status file's shape")
    p.add_argument("--write", action="store_true", help="also write it to the status file (atomically)")
    p.set_defaults(func=cmd_diagnose)

    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def cmd_listen(args: argparse.Namespace) -> int:
    return app.run_listen(settings_for(args))


def cmd_status(args: argparse.Namespace) -> int:
    return app.run_status(settings_for(args), args.file, as_json=args.json, out=sys.stdout)


def cmd_check(args: argparse.Namespace) -> int:
    return app.run_status(settings_for(args), args.file, as_json=False, out=None)


def cmd_explain(args: argparse.Namespace) -> int:
    return app.run_explain(settings_for(args), args.files, component=args.component, as_json=args.json,
                           out=sys.stdout, stdin=sys.stdin.buffer)


def cmd_rules(args: argparse.Namespace) -> int:
    return app.run_rules(settings_for(args), args.check, out=sys.stdout)


def cmd_diagnose(args: argparse.Namespace) -> int:
    return app.run_diagnose(settings_for(args), as_json=args.json, write=args.write, out=sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    if getattr(sys, "frozen", False):  # issue 10: the one-file build cleans what killed starts left in $TMPDIR
        unpacking.clean_leftovers(time.time())
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except app.USER_ERRORS as e:
        print(f"rainbond-watchdog {args.command}: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
