"""The command line: argparse → settings → the app. Thin on purpose.

Errors are one sentence on stderr and an exit status from the contract, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Sequence

from watchdog import __version__
from watchdog.config import ConfigError, Settings, load_settings, rule_paths
from watchdog.diagnosis.rules import RuleBook, load_rule_files
from watchdog.sinks.report import render_text
from watchdog.sinks.status_file import StatusUnavailable, exit_code, read_status

EXIT_UNUSABLE = 2


class UsageError(Exception):
    """Bad usage or input that the command cannot work with (exit 2)."""


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

    # -- diagnose (issue 4)

    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def rulebook_for(settings: Settings) -> RuleBook:
    return load_rule_files(rule_paths(settings))


def cmd_listen(args: argparse.Namespace) -> int:
    from watchdog.app import listen
    from watchdog.sinks import alerts
    from watchdog.sources.supervisor_events import EventChannel

    alerts.configure()
    settings = settings_for(args)
    rules = rulebook_for(settings)
    return listen(settings, rules, EventChannel.take_stdio())


def _read(args: argparse.Namespace, now: Callable[[], float] = time.time) -> tuple[Settings, dict[str, object]]:
    settings = settings_for(args)
    path = args.file or settings.status_file
    return settings, read_status(path, now(), settings.stale_seconds)


def cmd_status(args: argparse.Namespace) -> int:
    settings, doc = _read(args)
    if args.json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(doc, settings.languages))
    return exit_code(doc)


def cmd_check(args: argparse.Namespace) -> int:
    _, doc = _read(args)
    return exit_code(doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, StatusUnavailable, UsageError) as e:
        print(f"rainbond-watchdog {args.command}: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
