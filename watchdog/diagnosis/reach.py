"""Whether a one-shot ``diagnose`` reached anything to judge by (pure).

Outside the container (or with wrong paths) ``diagnose`` may reach neither supervisord, nor a
log, nor a kubeconfig: every check then finds nothing, which is not "no problems". This says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from watchdog.model import LogTail


@dataclass(frozen=True)
class Attempt:
    """One source ``diagnose`` tried: what it was, and whether it answered."""

    what: str
    reached: bool
    why_not: str = ""


def log_reached(tail: LogTail) -> bool:
    """A log counts as reached when the file could be read (an empty one too)."""
    return bool(tail.lines) or not tail.notes


def logs_attempt(log_dir: str, tails: Sequence[LogTail]) -> Attempt:
    names = ", ".join(t.path for t in tails) or f"no log files configured under {log_dir}"
    reached = any(log_reached(t) for t in tails)
    return Attempt(f"the programs' logs ({names})", reached, "none could be read")


def cannot_judge(attempts: Sequence[Attempt]) -> str | None:
    """``None`` when any source answered; else one sentence naming what was tried."""
    if not attempts or any(a.reached for a in attempts):
        return None
    tried = "; ".join(f"{a.what}: {a.why_not}" if a.why_not else a.what for a in attempts)
    return (f"could reach nothing to judge by, so it cannot say whether anything is wrong (tried {tried}); "
            "run it inside the container (`docker exec rainbond-allinone rainbond-watchdog diagnose`) "
            "or give --config with the right paths")
