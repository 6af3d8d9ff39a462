"""`make demo`: a simulated allinone under a real supervisord, ending in the watchdog's diagnosis.

Usage: python -m tests.allinone.demo [--scenario NAME] [--layout dockerd|containerd|embedded]
                                      [--supervisor 3|4] [--timeout SECONDS] [--keep] [--json-out FILE]

Starts supervisord in a temporary folder with the shipped ``[eventlistener:watchdog]`` section, an
init program that boots the phases like the image's ``entrypoint-dind.sh``, containerd (the real
one when installed and root, else a stand-in), a k3s stand-in (serving the Kubernetes API
stand-in where the scenario needs one) and a console stand-in. It shows the init program's
lines and the watchdog's alerts while it waits (bounded) for the diagnosis, prints
`rainbond-watchdog status` (zh, then en), and stops every process it started.

Exit status: 0 when the demo ran (whatever the diagnosis says: a failed boot is the point),
1 when the demo itself broke (supervisord would not start, no status file, a process left
behind), 2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.allinone.simulation import SCENARIOS, Allinone, Scenario, kube_api_available, poll_until, real_containerd
from tests.supervisor3 import Supervisor3Unavailable

STAMP = re.compile(r"^(?:\x1b\[[0-9;]*m)?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
NOTE = "   -- "
"""The init program's and the listener's lines are printed as `docker logs` shows them, unprefixed;
the demo's own remarks between them start with this."""
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRANSIENT = frozenset({"STARTING", "BACKOFF", "STOPPING"})
LAYOUT_IMAGES = {"dockerd": "v5.7-v5.8", "containerd": "v5.10-v5.13", "embedded": "v5.9, v5.14-v5.17"}
SETTLE_SECONDS = 15.0
"""After the expected problem appears, wait at most this long for the programs to settle."""


class Follower:
    """Prints new lines of a growing file, with a prefix (reads from where it left off)."""

    def __init__(self, path: Path, render: Any) -> None:
        self.path = path
        self.render = render
        self.offset = 0
        self.partial = b""

    def poll(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        out: list[str] = []
        for raw in lines:
            text = self.render(raw.decode(errors="replace"))
            if text:
                out.append(text)
        return out


class Interleaver:
    """Prints what the followers read in time order, as `docker logs` would: lines start with the
    init script's date (a line without one keeps the date of the line before it), and a line is
    held for ``HOLD_SECONDS`` so that one read later from the other file can still go before it."""

    HOLD_SECONDS = 1.5

    def __init__(self, followers: list[Follower]) -> None:
        self.followers = followers
        self.pending: list[tuple[str, int, float, str]] = []
        self.serial = 0

    def note(self, text: str) -> None:
        """A remark of the demo's own, placed among the lines by the time it was made."""
        self.serial += 1
        self.pending.append((time.strftime("%Y-%m-%d %H:%M:%S"), self.serial, time.monotonic(), NOTE + text))

    def poll(self, flush: bool = False) -> None:
        now = time.monotonic()
        for f in self.followers:
            last = ""
            for line in f.poll():
                m = STAMP.match(line)
                last = m.group(0) if m else last
                self.serial += 1
                self.pending.append((last, self.serial, now, line))
        self.pending.sort()
        while self.pending and (flush or now - self.pending[0][2] >= self.HOLD_SECONDS):
            say(self.pending.pop(0)[3])


def say(line: str) -> None:
    write(line + "\n")


def write(text: str) -> None:
    """stdout, surviving a reader that went away (`make demo | head`): the cleanup must still run."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class InitView:
    """The init program's lines, with the image load folded: a count of images unpacked, and
    only the first failed load in full (the image's script retries for ever)."""

    def __init__(self) -> None:
        self.unpacked = 0
        self.failures = 0

    def __call__(self, line: str) -> str | None:
        if not sys.stdout.isatty():
            line = ANSI.sub("", line)  # the script's colours, shown only on a terminal
        line = line.rstrip()
        if not line or line.startswith("Loaded image:"):
            return None
        if line.startswith("unpacking ") and line.endswith("...done"):
            self.unpacked += 1
            return None
        if "level=fatal" in line:
            self.failures += 1
            if self.failures > 1:
                if self.failures in (2, 3) or self.failures % 10 == 0:
                    return f"{NOTE}(image load failed again: attempt {self.failures}, same error)"
                return None
        elif self.failures and (line.startswith("unpacking ") or "apply failure" in line):
            return None
        if "Load container images successfully" in line and self.unpacked:
            line += f" ({self.unpacked} images unpacked)"
        return line if len(line) <= 220 else line[:217] + "..."


WATCHDOG_TAG = " [watchdog] "


def alert_line(line: str) -> str | None:
    """The listener's stderr exactly as `docker logs` shows it (its text lines; supervisord's own
    output, also on that stream in the demo, is left out). A JSON line (``alert_format = "json"``)
    is passed through as it is too."""
    text = line.rstrip("\n")
    if WATCHDOG_TAG in text or text.lstrip().startswith("{"):
        return text
    return None


def read_status(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def concluded(doc: dict[str, Any], scenario: Scenario) -> bool:
    """The diagnosis the scenario is about is there (or, for `healthy`, the boot is done)."""
    if not doc:
        return False
    if not scenario.expected:
        return doc.get("overall") == "healthy" and doc.get("phase") == "ready"
    ids = {p.get("id") for p in doc.get("problems", [])}
    return bool(ids & set(scenario.expected))


def settled(doc: dict[str, Any]) -> bool:
    comps = doc.get("components", {})
    return not any(isinstance(c, dict) and c.get("state") in TRANSIENT for c in comps.values())


def headline(doc: dict[str, Any]) -> str:
    problems = ", ".join(f"{p.get('id')}({p.get('subject')})" for p in doc.get("problems", [])) or "none"
    return f"layout {doc.get('layout')}, phase {doc.get('phase')}, overall {doc.get('overall')}, problems: {problems}"


def watch(sim: Allinone, timeout: float) -> tuple[dict[str, Any], bool]:
    """Show what happens until the diagnosis is in (bounded); returns the last status and whether it concluded."""
    logs = Interleaver([Follower(sim.init_log, InitView()), Follower(sim.stderr_path, alert_line)])
    want = " or ".join(sim.scenario.expected) if sim.scenario.expected else "overall healthy, phase ready"
    say(f"waiting for the watchdog's diagnosis ({want}), at most {timeout:.0f} s; the init program's and the "
        "watchdog's lines as `docker logs rainbond-allinone` shows them:")
    start = time.monotonic()
    seen_at: float | None = None
    last_head = ""
    doc: dict[str, Any] = {}

    def step() -> bool:
        nonlocal seen_at, last_head, doc
        logs.poll()
        doc = read_status(sim.status_file)
        if doc:
            head = headline(doc)
            if head != last_head:
                logs.note(f"status file: {head}  (+{time.monotonic() - start:.0f} s)")
                last_head = head
        if concluded(doc, sim.scenario):
            seen_at = seen_at or time.monotonic()
            return settled(doc) or time.monotonic() - seen_at > SETTLE_SECONDS
        return False

    done = bool(poll_until(step, timeout, 0.25))
    logs.poll(flush=True)
    return doc, done


def print_status(sim: Allinone) -> int:
    say("")
    say("=" * 100)
    say(f"$ rainbond-watchdog status --config {sim.watchdog_toml}")
    say("=" * 100)
    result = subprocess.run([sys.executable, "-m", "watchdog", "status", "--config", str(sim.watchdog_toml)],
                            capture_output=True, text=True, timeout=60)
    write(result.stdout)
    if result.stderr:
        write(result.stderr)
    say(f"(exit status {result.returncode}: 0 healthy or starting, 1 degraded or failed, 2 no usable status)")
    return result.returncode


def run(args: argparse.Namespace) -> int:
    scenario = SCENARIOS[args.scenario]
    if scenario.api and not kube_api_available():
        print(f"demo: scenario {scenario.name} needs the Kubernetes API stand-in (tests/kube_api/server.py), "
              "which this checkout does not have", file=sys.stderr)
        return 2
    if args.layout not in scenario.layouts:
        print(f"demo: scenario {scenario.name} is for the layouts {', '.join(scenario.layouts)}, "
              f"not {args.layout}", file=sys.stderr)
        return 2
    containerd = None if args.containerd == "stand-in" else real_containerd()
    if args.containerd == "real" and containerd is None:
        print("demo: --containerd real needs containerd installed and root", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="rainbond-demo-"))
    sim = Allinone(root, scenario, containerd=containerd, supervisor=args.supervisor, layout=args.layout)
    say(f"rainbond-watchdog demo — scenario {scenario.name}: {scenario.story}")
    why = "as asked" if args.containerd == "stand-in" else "the real one needs containerd installed and root"
    runtime = {"dockerd": "program docker (dockerd stand-in, logs/dind.log)",
               "embedded": "none (k3s's own, logging to data/k3s/agent/containerd/containerd.log)"}.get(
        args.layout, f"containerd: {'real, ' + containerd if containerd else f'stand-in ({why})'}")
    say(f"folder {root}; layout {args.layout}: {LAYOUT_IMAGES[args.layout]}; runtime {runtime}")
    code = 0
    try:
        sim.start()
        if sim.dropped_keys:
            say(f"(config keys this checkout does not know yet, left out: {', '.join(sim.dropped_keys)})")
        generation = "3.3.1 on Python 2.7, as in the image" if args.supervisor == 3 else "4 on Python 3"
        programs = ", ".join(p for p in ("init", sim.runtime_program, "k3s", "console") if p)
        say(f"supervisord {generation}, pid {sim.proc.pid if sim.proc else '?'}: programs {programs} and the "
            "watchdog listener (conf/supervisord-watchdog.conf)")
        doc, done = watch(sim, args.timeout)
        if not doc:
            say("demo: the watchdog wrote no status file; its stderr follows")
            write(sim.stderr_path.read_text(errors="replace")[-4000:])
            code = 1
        elif not done:
            say(f"(no conclusion within {args.timeout:.0f} s: showing the status as it is)")
        if doc:
            doc = read_status(sim.status_file) or doc
            if args.json_out:
                Path(args.json_out).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
            status = print_status(sim)
            if status == 2:
                code = 1
    except (RuntimeError, OSError, Supervisor3Unavailable) as e:
        say(f"demo: {e}")
        code = 1
    finally:
        ended, survivors = sim.stop()
        if survivors:
            say(f"demo: could not stop: {'; '.join(survivors)}")
            code = 1
        else:
            extra = f" (ended {ended} left over by process group)" if ended else ""
            say(f"stopped supervisord and every program{extra}; nothing left running")
        if args.keep:
            say(f"kept {root} (logs/, status/diagnosis.json, supervisord.log)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="cgroupv2", choices=sorted(SCENARIOS))
    parser.add_argument("--timeout", type=float, default=100.0, help="seconds to wait for the diagnosis (default 100)")
    parser.add_argument("--containerd", choices=["auto", "real", "stand-in"], default="auto")
    parser.add_argument("--supervisor", type=int, choices=[3, 4], default=4,
                        help="supervisord generation: 4 (Python 3) or 3 (3.3.1 on Python 2.7, the image's)")
    parser.add_argument("--layout", choices=sorted(LAYOUT_IMAGES), default="containerd",
                        help="the image layout simulated (default containerd, v5.10-v5.13)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, status file)")
    parser.add_argument("--json-out", metavar="FILE", help="also write the final status document here")
    args = parser.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too goes through run()'s cleanup

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
