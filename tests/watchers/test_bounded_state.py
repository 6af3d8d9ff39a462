"""Cost constant in history: after 200 000 random events every piece of the monitor's state has a
size bounded by the config, not by the stream (counted, not timed; ``bench/long_stream.py`` times it)."""
from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.helpers import frame, state_frame, tick_frame
from tests.watchers.support import Clock
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.problems import RESOLVED_KEPT
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import PHASES, PROCESS_COMPONENTS, Envelope, HostSample, ProbeResult
from watchdog.sources.supervisor_protocol import parse_header
from watchdog.watchers.base import INIT_BUFFER_LINES

STATES = ("STARTING", "RUNNING", "BACKOFF", "EXITED", "FATAL", "STOPPING", "STOPPED")
INIT_LINES = (
    "INFO: Containerd is starting, please wait ····",
    'time="2026-12-03T08:01:02Z" level=fatal msg="failed to load image: unexpected status 500"',
    "INFO: Load container images successfully",
    "WARN: 内存小于 2G",
)


def envelope(raw: str) -> Envelope:
    header, _, payload = raw.partition("\n")
    return Envelope(parse_header(header), payload)


def sizes(mon: Monitor) -> dict[str, int]:
    """Every collection the monitor keeps between events."""
    b = mon.board
    out: dict[str, int] = {
        "book.active": len(b.book.active),
        "book.resolved": len(b.book.resolved),
        "init_lines": len(b.init_lines),
        "pending": len(b.pending),
        "tasks": len(b.tasks),
        "timeline": len(mon.boot.timeline),
        "storms": len(mon.boot._storms),
        "region.pods": len(b.region.pods),
        "region.memory": len(mon.region_watcher.memory.restarts),
    }
    for comp, view in b.processes.items():
        out[f"starts.{comp}"] = len(view.starts)
    return out


def bounds(settings: Settings, rulebook: RuleBook) -> dict[str, int]:
    """What the config allows; nothing here depends on how many events came."""
    subjects = len(PROCESS_COMPONENTS) + 2  # the programs, the init program, k3s-api
    out = {
        "book.active": len(rulebook.rules) * subjects,
        "book.resolved": RESOLVED_KEPT,
        "init_lines": INIT_BUFFER_LINES,
        "pending": 0,
        "tasks": 3,
        "timeline": len(PHASES) + 3,  # the phases, ready, and the extra keys (api ...)
        "storms": len(PROCESS_COMPONENTS),
        "region.pods": 0,
        "region.memory": 0,
    }
    for comp in PROCESS_COMPONENTS:
        out[f"starts.{comp}"] = settings.flap_restarts
    return out


def stream(seed: int, n: int, programs: dict[str, str], clock: Clock) -> Any:
    rnd = random.Random(seed)  # noqa: S311  (a reproducible stream, not a secret)
    watched = [p for p in programs.values() if p]
    for serial in range(n):
        # mostly bursts (as supervisord sends a storm), now and then seconds: flapping windows,
        # resolutions, deadlines and storm summaries all come due over the stream
        clock.t += 5.0 if rnd.random() < 0.01 else 0.001
        kind = rnd.random()
        if kind < 0.25:
            yield tick_frame(int(clock.t), serial, "TICK_60" if rnd.random() < 0.02 else "TICK_5")
        elif kind < 0.5:
            yield state_frame(rnd.choice(STATES), rnd.choice(("cloudadaptor", "log", "rbd-other")), "STARTING", serial)
        elif kind < 0.55:
            program = rnd.choice(("init_rainbond", *watched))
            yield frame("PROCESS_LOG_STDOUT", f"processname:{program} groupname:{program} pid:7 channel:stdout\n"
                        + rnd.choice(INIT_LINES) + "\n", serial)
        else:
            frm = rnd.choice(STATES)
            to = rnd.choice(STATES)
            extra = {"pid": 100 + serial % 50} if to in ("RUNNING",) else {}
            if to == "EXITED":
                extra["expected"] = rnd.choice((0, 1))
            yield state_frame(to, rnd.choice(watched), frm, serial, **extra)


@pytest.mark.slow
@hsettings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_state_is_bounded_by_the_config_after_200000_events(settings: Settings, rulebook: RuleBook, seed: int) -> None:
    clock = Clock()
    mon = Monitor(settings, rulebook, clock=clock, writer=lambda p, t: None, host_sampler=HostSample,
                  console_prober=lambda: ProbeResult(False, "connection refused"))
    mon.kube_env = {}
    limit = bounds(settings, rulebook)
    peak: dict[str, int] = {}
    for i, raw in enumerate(stream(seed, 200_000, mon.board.programs, clock)):
        mon.handle(envelope(raw))
        if i % 1000 == 0:
            for k, v in sizes(mon).items():
                peak[k] = max(peak.get(k, 0), v)
    mon.wait_background(5)
    for k, v in sizes(mon).items():
        peak[k] = max(peak.get(k, 0), v)
    over = {k: (v, limit[k]) for k, v in peak.items() if v > limit[k]}
    assert not over, f"state grew past the config's bounds (size, bound): {over}"
    assert peak["init_lines"] == INIT_BUFFER_LINES  # the stream did fill what can be filled
    assert max(peak[f"starts.{c}"] for c in PROCESS_COMPONENTS) == settings.flap_restarts
    assert peak["book.resolved"] == RESOLVED_KEPT
