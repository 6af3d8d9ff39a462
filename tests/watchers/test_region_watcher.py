"""The region watcher alone: root cause first, the grace period, and a tick that does only what is due."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.watchers.support import make_board
from watchdog.config import Settings
from watchdog.diagnosis import region as region_diag
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ProcessView, RegionPoll
from watchdog.scheduling import Outcome
from watchdog.sources import kube
from watchdog.watchers import region as region_watcher
from watchdog.watchers.region import RegionWatcher


def running(board: object, now: float) -> None:
    for comp in ("containerd", "k3s"):
        board.processes[comp] = ProcessView("RUNNING", since=now)  # type: ignore[attr-defined]


def test_while_k3s_is_down_the_region_is_not_started_and_never_polled(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = RegionWatcher(board)
    board.processes["k3s"] = ProcessView("BACKOFF", since=clock.t)
    assert w.on_tick(clock.t) == []
    assert board.region.api == "not-started" and w.task is None and not board.tasks


def test_an_unreachable_api_is_a_problem_only_after_the_grace(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = RegionWatcher(board)
    running(board, clock.t)
    poll = RegionPoll(clock.t, clock.t, error="connection refused: [Errno 111]")
    assert w._apply(Outcome(poll, None, clock.t, clock.t), clock.t + 1) == []
    assert board.region.api.startswith("unreachable")
    later = clock.t + settings.kubernetes.api_grace_seconds
    changes = w._apply(Outcome(poll, None, later, later), later)
    assert [c.problem.finding.id for c in changes] == ["region.api-unreachable"]
    assert board.book.in_scope(region_diag.API_SCOPE)


def test_the_kubeconfig_is_looked_for_only_when_a_poll_is_due(
    settings: Settings, rulebook: RuleBook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = RegionWatcher(board)
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text("apiVersion: v1\n")
    w.kube_env = {"KUBECONFIG": str(kubeconfig)}
    running(board, clock.t)
    looked = []
    real = kube.find_kubeconfig

    def counting(configured: str, env: object) -> str | None:
        looked.append(1)
        return real(configured, env)  # type: ignore[arg-type]

    monkeypatch.setattr(region_watcher.kube, "find_kubeconfig", counting)
    polls = []
    w.poll = lambda: polls.append(1) or RegionPoll(clock.t, clock.t, error="timeout: test")  # type: ignore[method-assign]
    for _ in range(1000):
        w.on_tick(clock.t)
        assert w.task is not None and w.task.wait(5)
    assert len(polls) == 1
    assert len(looked) <= 2  # the first tick, and the one that takes the poll's outcome
    clock.t += settings.kubernetes.poll_seconds
    w.on_tick(clock.t)
    assert w.task.wait(5) and len(polls) == 2
