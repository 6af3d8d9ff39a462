"""The region: the k3s API and the ``rbd-system`` pods (scopes ``region:api``, ``region:pods``).

Polls run in a background task (``kubernetes.poll_seconds``), never on the event path. Root
cause first: while containerd or k3s is down, or k3s has written no kubeconfig yet, the region
is "not started" and not diagnosed. **The grace period** lives in ``_apply``: an unreachable API
is a problem only ``kubernetes.api_grace_seconds`` after k3s (or the listener) started.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from watchdog.config import KubeSettings
from watchdog.diagnosis import region as region_diag
from watchdog.diagnosis.problems import Change
from watchdog.model import ABSENT, UNKNOWN, EventObs, PodDetail, ProcessView, RegionPoll, RegionView
from watchdog.scheduling import BackgroundTask, Outcome
from watchdog.sources import kube
from watchdog.watchers.base import Board, Watcher


def poll_cluster(
    client: kube.KubeClient, k: KubeSettings, memory: region_diag.RegionMemory, clock: Callable[[], float] = time.time
) -> RegionPoll:
    """One read-only poll: the namespace's pods, the nodes, then events and previous logs of the
    pods that look wrong; every request within ``k.timeout_seconds`` of the first."""
    started = clock()
    before = client.requests
    try:
        client.prepare()  # import and kubeconfig: local work, before the deadline starts
        deadline = time.monotonic() + k.timeout_seconds
        pods = client.list_pods(k.namespace, deadline)
        nodes = client.list_nodes(deadline)
    except kube.ApiUnavailable as e:
        return RegionPoll(started, clock(), error=str(e), requests=client.requests - before)
    details: dict[str, PodDetail] = {}
    for name, container in region_diag.needs_detail(pods, memory, clock(), k):
        notes: list[str] = []
        events: tuple[EventObs, ...] = ()
        lines: tuple[str, ...] = ()
        try:
            events = client.pod_events(k.namespace, name, deadline)
        except kube.DetailUnavailable as e:
            notes.append(str(e))
        if container:
            try:
                lines = client.previous_log(k.namespace, name, container, k.log_tail_lines, deadline)
            except kube.DetailUnavailable as e:
                notes.append(str(e))
        details[name] = PodDetail(events, container, lines, tuple(notes))
    return RegionPoll(started, clock(), pods=pods, nodes=nodes, details=details, requests=client.requests - before)


NOT_STARTED = RegionView(api="not-started")
KUBECONFIG_LOOK_SECONDS = 5.0
"""While k3s has written no kubeconfig, it is looked for this often (a TICK_5's period)."""


_UNSEEN = ProcessView()


class RegionWatcher(Watcher):
    name = "region"

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        self.kube_env: Mapping[str, str] = os.environ
        """Where ``$KUBECONFIG`` is looked up (the fallback after ``kubernetes.kubeconfig``)."""
        self.assume_up = False
        """``diagnose`` without supervisord: k3s's state is unknown, judge the API without its grace."""
        self.memory = region_diag.RegionMemory()
        self.client: kube.KubeClient | None = None
        self.task: BackgroundTask[RegionPoll] | None = None
        self._api_said = ""
        self._no_kubeconfig_at: float | None = None
        self._maybe_raised = True
        """Whether the book may hold region problems (a restored file, or a poll since the last clear)."""

    def on_tick(self, now: float) -> list[Change]:
        """Start a poll when due (off the event path) and apply finished polls."""
        b = self.board
        k3s = b.processes.get("k3s", _UNSEEN)
        containerd = b.processes.get("containerd", _UNSEEN)
        down = k3s.state not in ("RUNNING", UNKNOWN) or containerd.state not in ("RUNNING", ABSENT, UNKNOWN)
        task = self.task
        if not down and task is not None and not task.finished and not task.due(now):
            return []  # nothing due: the kubeconfig is looked for when a poll is
        path = None if down else self._kubeconfig(now)
        if path is None:
            if task is not None:
                task.take()  # a poll that started before k3s went down says nothing now
            if b.region is not NOT_STARTED:
                b.region = NOT_STARTED
            changes = self._clear(now)
            self._say_api("not-started")
            return changes
        if task is None:
            task = BackgroundTask("region", self.poll, b.settings.kubernetes.poll_seconds, b.clock)
            self.task = task
            b.tasks.append(task)
        changes = []
        for outcome in task.take():
            changes += self._apply(outcome, now)
        task.maybe_start(now)
        return changes

    def _kubeconfig(self, now: float) -> str | None:
        """The kubeconfig k3s writes, looked for at most every ``KUBECONFIG_LOOK_SECONDS`` while absent."""
        if self._no_kubeconfig_at is not None and now - self._no_kubeconfig_at < KUBECONFIG_LOOK_SECONDS:
            return None
        path = kube.find_kubeconfig(self.board.settings.kubernetes.kubeconfig, self.kube_env)
        self._no_kubeconfig_at = now if path is None else None
        return path

    def _clear(self, now: float) -> list[Change]:
        """Resolve the region's problems; only this watcher raises them, so once cleared they stay
        so until a poll applies (a restored status file may bring some: ``_maybe_raised``)."""
        b = self.board
        if not self._maybe_raised or not b.book.active:
            return []
        self._maybe_raised = False
        return b.reconcile(region_diag.API_SCOPE, [], now) + b.reconcile(region_diag.PODS_SCOPE, [], now)

    def poll(self) -> RegionPoll:
        """One poll (in the background thread), through a client kept between polls."""
        b = self.board
        k = b.settings.kubernetes
        path = kube.find_kubeconfig(k.kubeconfig, self.kube_env)
        if path is None:
            now = b.clock()
            return RegionPoll(now, now, error="kubeconfig: no kubeconfig file (yet)")
        client = self.client
        if client is None or client.kubeconfig != path or client.stale():
            if client is not None:
                client.close()
            client = self.client = kube.KubeClient(path, k.timeout_seconds)
        poll = poll_cluster(client, k, self.memory, b.clock)
        if poll.error:
            client.close()  # drop connections a hung or closed server left behind
        return poll

    def _apply(self, outcome: Outcome[RegionPoll], now: float) -> list[Change]:
        b = self.board
        self._maybe_raised = True
        k = b.settings.kubernetes
        poll = outcome.value
        if poll is None:
            b.log.error("region_poll_crashed", error=repr(outcome.error))
            poll = RegionPoll(outcome.started, outcome.finished, error=f"internal error: {outcome.error!r}")
        k3s = b.processes["k3s"]
        if poll.error:
            reason = poll.error.split(":", 1)[0]
            b.region = region_diag.unreachable_view(b.region, reason)
            self._say_api(b.region.api, error=poll.error)
            since = k3s.since if k3s.state == "RUNNING" and k3s.since is not None else b.started_at
            if not self.assume_up and now - since < k.api_grace_seconds:
                return []  # the grace period: k3s is still starting, not a problem yet
            finding = b.rules.finding(
                "region.api-unreachable", "k3s-api",
                evidence=[poll.error, f"kubeconfig: {self.client.kubeconfig if self.client else '?'}"],
                source="k8s:api", scope=region_diag.API_SCOPE, details={"reason": poll.error},
            )
            # While the API is unreachable, pod problems are neither raised nor resolved.
            return b.reconcile(region_diag.API_SCOPE, [finding], now)
        region_since = k3s.since if k3s.state == "RUNNING" else None
        result = region_diag.analyse(b.rules, poll, self.memory, now, k, region_since)
        b.region = result.view
        self.memory = result.memory
        self._say_api("ok", requests=poll.requests, seconds=round(poll.finished - poll.started, 3))
        changes = b.reconcile(region_diag.API_SCOPE, [], now)
        changes += b.reconcile(region_diag.PODS_SCOPE, list(result.findings), now)
        return changes

    def poll_overdue(self, now: float, waited: float) -> list[Change]:
        """``diagnose`` waited long enough: a poll still in flight counts as an API that timed out."""
        task = self.task
        if task is None or not task.busy:
            return []
        poll = RegionPoll(now - waited, now, error=f"timeout: the API did not answer within {waited:g} s")
        return self._apply(Outcome(poll, None, now - waited, now), now)

    def _say_api(self, api: str, **kv: Any) -> None:
        """One stderr line when the API's state changes (not one per poll)."""
        if api != self._api_said:
            self._api_said = api
            self.board.log.info("region_api", api=api, **kv)
