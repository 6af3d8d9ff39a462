"""The command line: argparse → settings → the app. Thin on purpose.

Errors are one sentence on stderr and an exit status from the contract, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from watchdog import __version__, app
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
    # issue 13: the rules as Node Problem Detector configs
    p.add_argument("--export", metavar="npd", help="write the rules as Node Problem Detector configs (npd)")
    p.add_argument("--component", nargs="+", choices=COMPONENTS, metavar="NAME",
                   help="with --export: only the log sources of these components")
    p.add_argument("--out", metavar="DIR", help="with --export: the folder to write into")
    p.set_defaults(func=cmd_rules)

    # -- diagnose (issue 4)
    p = sub.add_parser("diagnose", parents=[common], help="run every check once, now, and print the result")
    p.add_argument("--json", action="store_true", help="print the result in the status file's shape")
    p.add_argument("--write", action="store_true", help="also write it to the status file (atomically)")
    # issue 13: any cluster's rbd-system, read-only
    p.add_argument("--kubeconfig", metavar="FILE",
                   help="only the region checks, against the cluster of this kubeconfig (read-only)")
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
    if args.export is not None:
        if args.check:
            raise app.UsageError("--export and --check do not go together")
        return app.run_rules_export(settings_for(args), args.export, args.component, args.out,
                                    out=sys.stdout, err=sys.stderr)
    if args.component or args.out:
        raise app.UsageError("--component and --out go with --export npd")
    return app.run_rules(settings_for(args), args.check, out=sys.stdout)


def cmd_diagnose(args: argparse.Namespace) -> int:
    if args.kubeconfig is not None:
        if args.write:
            raise app.UsageError("--write goes without --kubeconfig: a cluster's diagnosis is not this container's status")
        return app.run_diagnose_cluster(settings_for(args), args.kubeconfig, as_json=args.json, out=sys.stdout)
    return app.run_diagnose(settings_for(args), as_json=args.json, write=args.write, out=sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
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
