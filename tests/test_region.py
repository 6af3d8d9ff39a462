"""diagnosis/region.py: pure analysis of pods, events and nodes (no API, no clock)."""
from __future__ import annotations

import dataclasses

import pytest

from watchdog.config import KubeSettings
from watchdog.diagnosis import region
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ConditionObs, ContainerObs, EventObs, NodeObs, PodDetail, PodObs, RegionPoll

NOW = 1_790_000_000.0
DAY = 86400.0
K = KubeSettings(expected_pods=("rbd-api", "rbd-db"))


def running(name: str, created: float = NOW - 3 * DAY, ready: bool = True, restarts: int = 0, **c: object) -> PodObs:
    ctr = ContainerObs(name="main", ready=ready, restarts=restarts, state="running", **c)  # type: ignore[arg-type]
    cond = ConditionObs("Ready", "True" if ready else "False", since=NOW - 2 * DAY)
    return PodObs(name=name, phase="Running", created=created, containers=(ctr,), conditions=(cond,))


def node(**pressure: str) -> NodeObs:
    conds = [ConditionObs(t, pressure.get(t, "False"), reason=f"R{t}", message=f"m {t}", since=NOW - 3600)
             for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
    conds.append(ConditionObs("Ready", pressure.get("Ready", "True"), reason="KubeletReady", message="ok", since=NOW - DAY))
    return NodeObs("n1", NOW - 10 * DAY, tuple(conds))


def analyse(rulebook: RuleBook, pods: list[PodObs], nodes: list[NodeObs] | None = None,
            details: dict[str, PodDetail] | None = None, memory: region.RegionMemory | None = None,
            k: KubeSettings = K, since: float | None = NOW - DAY) -> region.RegionResult:
    poll = RegionPoll(NOW, NOW, pods=tuple(pods), nodes=tuple(nodes if nodes is not None else [node()]),
                      details=details or {})
    return region.analyse(rulebook, poll, memory or region.RegionMemory(), NOW, k, since)


def ids(result: region.RegionResult) -> set[tuple[str, str]]:
    return {f.key for f in result.findings}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (119, "119s"), (200, "3m20s"), (300, "5m"), (7200, "120m"), (5 * 3600 + 60, "5h1m"),
     (20 * 3600, "20h"), (2 * DAY + 21 * 3600, "2d21h"), (3 * DAY, "3d"), (30 * DAY, "30d"), (800 * DAY, "2y70d")],
)
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    """Durations follow kubectl's HumanDuration."""
    assert region.human_duration(seconds) == text


def test_events_collapse_like_kubectl_describe() -> None:
    """Repeated events merge and show "(x832 over 2d21h)", newest last."""
    events = [
        EventObs("Warning", "FailedScheduling", "0/1 nodes are available", "default-scheduler", 800,
                 NOW - 2 * DAY - 21 * 3600, NOW - 400),
        EventObs("Warning", "FailedScheduling", "0/1 nodes are available", "default-scheduler", 32, NOW - DAY, NOW - 312),
        EventObs("Normal", "Scheduled", "assigned", "default-scheduler", 1, NOW - 3 * DAY, NOW - 3 * DAY),
    ]
    lines = region.event_lines(events, NOW)
    assert len(lines) == 2
    assert "FailedScheduling" in lines[-1] and "5m12s (x832 over 2d21h)" in lines[-1]


def test_a_healthy_region_raises_nothing_and_is_ready(rulebook: RuleBook) -> None:
    """Every expected pod Running and ready, node fine: no findings, ready."""
    r = analyse(rulebook, [running("rbd-api-6f6c565856-bq9bp"), running("rbd-db-0")])
    assert not r.findings and r.view.ready and r.view.api == "ok"
    assert r.view.pods["rbd-db-0"].ready == "1/1" and r.view.pods_ready == 2


def test_succeeded_and_young_pods_are_not_judged(rulebook: RuleBook) -> None:
    """A completed job and a pod still within its start grace raise nothing."""
    done = dataclasses.replace(running("rbd-job-x"), phase="Succeeded")
    young = PodObs(name="rbd-api-1", phase="Pending", created=NOW - 30)
    r = analyse(rulebook, [done, young, running("rbd-db-0")])
    assert not r.findings and "rbd-job-x" not in r.view.pods


def test_old_pending_pod_is_pending_with_its_events(rulebook: RuleBook) -> None:
    """Pending past its grace: region.pod-pending with the scheduler's message and events."""
    pod = PodObs(name="rbd-db-0", phase="Pending", created=NOW - DAY,
                 conditions=(ConditionObs("PodScheduled", "False", "Unschedulable", "0/1 nodes are available"),))
    ev = EventObs("Warning", "FailedScheduling", "0/1 nodes are available", "default-scheduler", 5, NOW - 600, NOW - 60)
    r = analyse(rulebook, [pod, running("rbd-api-1")], details={"rbd-db-0": PodDetail(events=(ev,))})
    (f,) = r.findings
    assert f.key == ("region.pod-pending", "rbd-db-0") and f.source == "k8s:pod/rbd-db-0"
    assert any("(x5 over 10m)" in e for e in f.evidence)
    assert "Unschedulable" in f.summary.en


def test_disk_pressure_is_named_in_pending_and_evicted_evidence(rulebook: RuleBook) -> None:
    """Root cause first: the node's DiskPressure leads the evidence of the pods it blocked."""
    pending = PodObs(name="rbd-db-0", phase="Pending", created=NOW - DAY)
    evicted = PodObs(name="rbd-api-1", phase="Failed", reason="Evicted", created=NOW - DAY,
                     message="The node was low on resource: ephemeral-storage.")
    r = analyse(rulebook, [pending, evicted, running("rbd-api-2")], nodes=[node(DiskPressure="True")])
    by_id = {f.id: f for f in r.findings}
    assert set(by_id) == {"node.disk-pressure", "region.pod-pending", "region.pod-evicted"}
    for pid in ("region.pod-pending", "region.pod-evicted"):
        assert "DiskPressure" in by_id[pid].evidence[0]
        assert "disk pressure" in by_id[pid].summary.en
    assert any("ephemeral-storage" in e for e in by_id["region.pod-evicted"].evidence)
    assert any("DiskPressure=True" in e for e in by_id["region.pod-evicted"].evidence)


def test_evicted_pod_does_not_count_as_the_expected_pod(rulebook: RuleBook) -> None:
    """An expected name with only an evicted pod is missing, too."""
    evicted = PodObs(name="rbd-api-1", phase="Failed", reason="Evicted", created=NOW - DAY)
    r = analyse(rulebook, [evicted, running("rbd-db-0")])
    assert ids(r) == {("region.pod-evicted", "rbd-api-1"), ("region.pod-missing", "rbd-api")}
    assert not r.view.ready


def test_missing_is_judged_only_after_the_start_grace(rulebook: RuleBook) -> None:
    """Right after k3s starts, absent pods are not yet missing; later they are."""
    assert not analyse(rulebook, [running("rbd-db-0")], since=NOW - 10).findings
    r = analyse(rulebook, [running("rbd-db-0")], since=NOW - 3600)
    (f,) = r.findings
    assert f.key == ("region.pod-missing", "rbd-api") and f.source == "k8s:pod/rbd-api"


def test_prefix_match_needs_a_dash(rulebook: RuleBook) -> None:
    """`rbd-db` is not satisfied by `rbd-dbproxy-0`."""
    r = analyse(rulebook, [running("rbd-api-1"), running("rbd-dbproxy-0")])
    assert ids(r) == {("region.pod-missing", "rbd-db")}


def test_crashloop_decodes_oom_and_quotes_the_previous_log(rulebook: RuleBook) -> None:
    """CrashLoopBackOff with an OOMKilled last state: called out, previous log lines as evidence."""
    ctr = ContainerObs("rbd-api", False, 12, "waiting", "CrashLoopBackOff", "back-off 5m0s", last_reason="OOMKilled",
                       last_exit_code=137, last_finished=NOW - 30)
    pod = PodObs(name="rbd-api-1", phase="Running", created=NOW - DAY, containers=(ctr,))
    log = tuple(f"line {i}" for i in range(40))
    r = analyse(rulebook, [pod, running("rbd-db-0")],
                details={"rbd-api-1": PodDetail(log_container="rbd-api", log_lines=log)})
    (f,) = r.findings
    assert f.id == "region.pod-crashloop" and "OOMKilled" in f.summary.en
    assert any("OOMKilled" in e and "137" in e for e in f.evidence)
    assert f.evidence[-1] == "line 39" and len(f.evidence) <= 20
    assert any(e.startswith("--- previous container log") for e in f.evidence)


def test_restarts_are_counted_in_a_window(rulebook: RuleBook) -> None:
    """Many restarts long ago are fine; three within the window while Running is a crash loop."""
    k = dataclasses.replace(K, crashloop_restarts=3, restart_window_seconds=600)
    old = running("rbd-api-1", restarts=40, last_reason="Error", last_exit_code=1, last_finished=NOW - DAY)
    r = analyse(rulebook, [old, running("rbd-db-0")], k=k)
    assert not r.findings
    later = dataclasses.replace(old, containers=(dataclasses.replace(old.containers[0], restarts=43,
                                                                     last_finished=NOW + 250),))
    poll = RegionPoll(NOW + 300, NOW + 300, pods=(later, running("rbd-db-0")), nodes=(node(),))
    r2 = region.analyse(rulebook, poll, r.memory, NOW + 300, k, NOW - DAY)
    assert {f.id for f in r2.findings} == {"region.pod-crashloop"}
    # The window slides: 20 minutes on with no new restart, it is over.
    poll3 = RegionPoll(NOW + 1500, NOW + 1500, pods=(later, running("rbd-db-0")), nodes=(node(),))
    r3 = region.analyse(rulebook, poll3, r2.memory, NOW + 1500, k, NOW - DAY)
    assert not r3.findings


def test_image_pull_wins_over_pending(rulebook: RuleBook) -> None:
    """A Pending pod whose container cannot pull its image is an image-pull problem."""
    ctr = ContainerObs("rbd-db", False, 0, "waiting", "ImagePullBackOff", 'Back-off pulling image "x"')
    pod = PodObs(name="rbd-db-0", phase="Pending", created=NOW - DAY, containers=(ctr,))
    r = analyse(rulebook, [pod, running("rbd-api-1")])
    assert ids(r) == {("region.pod-image-pull", "rbd-db-0")}
    assert r.view.pods["rbd-db-0"].reason == "ImagePullBackOff"


def test_not_ready_for_long_is_a_problem_briefly_is_not(rulebook: RuleBook) -> None:
    """Running with containers unready past not_ready_seconds: region.pod-not-ready (n/m in the text)."""
    ctrs = (ContainerObs("db", False, 0, "running"), ContainerObs("metrics", True, 0, "running"))
    since = ConditionObs("Ready", "False", "ContainersNotReady", "containers with unready status: [db]", NOW - 3600)
    pod = PodObs(name="rbd-db-0", phase="Running", created=NOW - DAY, containers=ctrs, conditions=(since,))
    r = analyse(rulebook, [pod, running("rbd-api-1")])
    (f,) = r.findings
    assert f.id == "region.pod-not-ready" and "1/2" in f.summary.en
    brief = dataclasses.replace(pod, conditions=(dataclasses.replace(since, since=NOW - 30),))
    assert not analyse(rulebook, [brief, running("rbd-api-1")]).findings


@pytest.mark.parametrize(
    ("condition", "pid"),
    [("DiskPressure", "node.disk-pressure"), ("MemoryPressure", "node.memory-pressure"),
     ("PIDPressure", "node.pid-pressure")],
)
def test_node_pressure_conditions(rulebook: RuleBook, condition: str, pid: str) -> None:
    """Each pressure condition set to True raises its node problem with the conditions as evidence."""
    r = analyse(rulebook, [running("rbd-api-1"), running("rbd-db-0")], nodes=[node(**{condition: "True"})])
    (f,) = r.findings
    assert f.key == (pid, "n1") and f.source == "k8s:node/n1" and len(f.evidence) == 5


def test_node_not_ready(rulebook: RuleBook) -> None:
    """Ready=False (or Unknown) raises node.not-ready."""
    r = analyse(rulebook, [running("rbd-api-1"), running("rbd-db-0")], nodes=[node(Ready="Unknown")])
    assert ids(r) == {("node.not-ready", "n1")}


def test_detail_fetches_are_capped(rulebook: RuleBook) -> None:
    """Only the unhealthy pods get details, at most max_detail_pods, crash loops with their container."""
    pods = [PodObs(name=f"rbd-x-{i}", phase="Pending", created=NOW - DAY) for i in range(9)]
    crash = ContainerObs("c", False, 5, "waiting", "CrashLoopBackOff")
    pods.insert(0, PodObs(name="rbd-crash", phase="Running", created=NOW - DAY, containers=(crash,)))
    wanted = region.needs_detail([running("ok"), *pods], region.RegionMemory(), NOW, K)
    assert len(wanted) == K.max_detail_pods and wanted[0] == ("rbd-crash", "c")
    assert ("ok", "") not in wanted
