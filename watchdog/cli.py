"""The command line: argparse → settings → the app. Thin on purpose.

Global options (``--config``, ``--language``) are accepted before or after the command.
Errors are one sentence on stderr and an exit status from the contract, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
import time
from typing import Sequence

from watchdog import __version__, status_command, unpacking, watching
from watchdog.config import Settings, load_settings
from watchdog.errors import USER_ERRORS, UsageError
from watchdog.model import COMPONENTS

EXIT_UNUSABLE = 2
IN_IMAGE = "docker exec rainbond-allinone rainbond-watchdog"

EXAMPLES = {
    "listen": """\
        supervisord runs it (conf/supervisord-watchdog.conf):
          [eventlistener:watchdog]
          command=rainbond-watchdog listen
          events=PROCESS_STATE,PROCESS_LOG,TICK_5,TICK_60""",
    "status": f"""\
        {IN_IMAGE} status                 # components, problems, what to do (zh, then en)
        {IN_IMAGE} status --language en   # English only
        docker exec -it rainbond-allinone rainbond-watchdog status --watch  # follow a boot""",
    "check": """\
        HEALTHCHECK --interval=30s --timeout=5s CMD rainbond-watchdog check""",
    "explain": f"""\
        {IN_IMAGE} explain --component k3s /app/logs/k3s.log
        docker logs rainbond-allinone 2>&1 | docker exec -i rainbond-allinone rainbond-watchdog explain -""",
    "rules": """\
        rainbond-watchdog rules                          # the rules in force
        rainbond-watchdog rules --check my-rules.toml    # validate a rule file""",
    "diagnose": f"""\
        {IN_IMAGE} diagnose                  # every check once, now
        {IN_IMAGE} diagnose --json --write   # also update the status file""",
}


def _epilog(command: str) -> str | None:
    example = EXAMPLES.get(command)
    return "example:\n" + textwrap.indent(textwrap.dedent(example), "  ") if example else None


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """``--config`` and ``--language``; under a command their default is SUPPRESS, so that a value
    given before the command is not overwritten by the command's default."""
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="config file (default: $RAINBOND_WATCHDOG_CONFIG, else the packaged conf/watchdog.toml)")
    parser.add_argument("--language", metavar="LANGS", default=default,
                        help="languages of the text, in order: zh, en or zh,en (default: language in the config)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rainbond-watchdog",
        description="Self-diagnosis for the Rainbond allinone container (a supervisord eventlistener).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  {IN_IMAGE} status\n\n"
               "Global options may come before or after the command. `rainbond-watchdog COMMAND --help` "
               "shows each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"rainbond-watchdog {__version__}")
    _global_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=helptext, description=helptext[0].upper() + helptext[1:] + ".",
                              epilog=_epilog(name), formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("listen", "run as the supervisord eventlistener")
    p.set_defaults(func=cmd_listen)

    for name, helptext, func in (
        ("status", "show the status file for a person (or --json)", cmd_status),
        ("check", "the same decision as status, silent (Docker HEALTHCHECK)", cmd_check),
    ):
        p = command(name, helptext)
        p.add_argument("--file", metavar="PATH", help="status file (default: status_file from the config)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print the status file as JSON")
            p.add_argument("--watch", action="store_true",
                           help="redraw whenever the status file changes, until Ctrl-C (exit status as status)")
            p.add_argument("--interval", type=_positive, default=1.0, metavar="SECONDS",
                           help="with --watch: how often to look at the file (default 1)")
        p.set_defaults(func=func)

    # -- explain, rules (issue 3)
    p = command("explain", "run the log rules over files (- is stdin), offline")
    p.add_argument("--component", choices=(*COMPONENTS, "region"),  # region: rbd-system pod logs (issue 12)
                   help="keep the rules for this component (and the host's)")
    p.add_argument("--json", action="store_true", help='print {"problems": [...]} as JSON')
    p.add_argument("files", nargs="+", metavar="FILE", help="log files; - reads stdin")
    p.set_defaults(func=cmd_explain)

    p = command("rules", "list the rules in force, or validate rule files")
    p.add_argument("--check", nargs="+", metavar="FILE", help="validate these rule files (exit 2 when invalid)")
    # issue 13: the rules as Node Problem Detector configs
    p.add_argument("--export", metavar="npd", help="write the rules as Node Problem Detector configs (npd)")
    p.add_argument("--component", nargs="+", choices=COMPONENTS, metavar="NAME",
                   help="with --export: only the log sources of these components")
    p.add_argument("--out", metavar="DIR", help="with --export: the folder to write into")
    p.set_defaults(func=cmd_rules)

    # -- diagnose (issue 4)
    p = command("diagnose", "run every check once, now, and print the result")
    p.add_argument("--json", action="store_true", help="print the result in the status file's shape")
    p.add_argument("--write", action="store_true", help="also write it to the status file (atomically)")
    # issue 13: any cluster's rbd-system, read-only
    p.add_argument("--kubeconfig", metavar="FILE",
                   help="only the region checks, against the cluster of this kubeconfig (read-only)")
    p.set_defaults(func=cmd_diagnose)

    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def settings_for(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    language = getattr(args, "language", None)
    if language:
        langs = [x.strip() for x in language.split(",") if x.strip()]
        if not langs or any(x not in ("zh", "en") for x in langs):
            raise UsageError(f"--language must list zh and/or en, got {language!r}")
        settings = dataclasses.replace(settings, language=",".join(langs))
    return settings


def cmd_listen(args: argparse.Namespace) -> int:
    from watchdog import app  # lazily: `check` (HEALTHCHECK, every 30 s) never pays for the listener

    return app.run_listen(settings_for(args))


def cmd_status(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.watch:
        if args.json:
            raise UsageError("--watch shows the text for a person; it does not combine with --json")
        path = args.file or settings.status_file
        return watching.watch(
            path,
            lambda now: watching.look(path, now, settings.stale_seconds, settings.languages),
            sys.stdout,
            terminal=sys.stdout.isatty(),
            interval=args.interval,
        )
    return status_command.run_status(settings, args.file, as_json=args.json, out=sys.stdout)


def cmd_check(args: argparse.Namespace) -> int:
    return status_command.run_status(settings_for(args), args.file, as_json=False, out=None)


def cmd_explain(args: argparse.Namespace) -> int:
    from watchdog import app  # lazily: `check` (HEALTHCHECK, every 30 s) never pays for the listener

    return app.run_explain(settings_for(args), args.files, component=args.component, as_json=args.json,
                           out=sys.stdout, stdin=sys.stdin.buffer)


def cmd_rules(args: argparse.Namespace) -> int:
    from watchdog import app  # lazily: `check` (HEALTHCHECK, every 30 s) never pays for the listener

    if args.export is not None:
        if args.check:
            raise UsageError("--export and --check do not go together")
        return app.run_rules_export(settings_for(args), args.export, args.component, args.out,
                                    out=sys.stdout, err=sys.stderr)
    if args.component or args.out:
        raise UsageError("--component and --out go with --export npd")
    return app.run_rules(settings_for(args), args.check, out=sys.stdout)


def cmd_diagnose(args: argparse.Namespace) -> int:
    from watchdog import app  # lazily: `check` (HEALTHCHECK, every 30 s) never pays for the listener

    if args.kubeconfig is not None:
        if args.write:
            raise UsageError("--write goes without --kubeconfig: a cluster's diagnosis is not this container's status")
        return app.run_diagnose_cluster(settings_for(args), args.kubeconfig, as_json=args.json, out=sys.stdout)
    return app.run_diagnose(settings_for(args), as_json=args.json, write=args.write, out=sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    if getattr(sys, "frozen", False):  # issue 10: the one-file build cleans what killed starts left in $TMPDIR
        unpacking.clean_leftovers(time.time())
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except USER_ERRORS as e:
        print(f"rainbond-watchdog {args.command}: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
