"""The Rainbond region: what `kubectl get pod`, `describe pod`, `logs --previous` and `describe
node` would tell a person, turned into findings. Pure: a poll's observations, a small memory of
earlier polls and ``now`` in; the region's view, findings and the new memory out.

Root cause first: a node under DiskPressure is named in the evidence of the pods it made
Pending or Evicted; one finding per pod (evicted, image pull, crash loop, pending, not ready,
in that order of precedence). A crash-looping pod's previous log runs through the region rules
(``conf/region_rules.toml``): its cause is quoted first, and when the component it cannot reach is
down itself, the dependency map (``conf/region_dependencies.toml``) folds it into that
component's one problem. The app decides when the region is diagnosed at all (not while
containerd or k3s is down, not while the API is unreachable).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Mapping, Sequence

from watchdog.config import KubeSettings
from watchdog.diagnosis.dependencies import Cause, fold
from watchdog.diagnosis.exit_status import explain_exit
from watchdog.diagnosis.rules import MAX_EVIDENCE_LINES, REGION_COMPONENT, RuleBook, bound_evidence
from watchdog.model import (
    ContainerObs,
    EventObs,
    Finding,
    NodeObs,
    PodDetail,
    PodObs,
    PodView,
    RegionPoll,
    RegionView,
    Steps,
)

PODS_SCOPE = "region:pods"
"""Pod, missing-pod and node findings; reconciled only after a poll that answered."""
API_SCOPE = "region:api"
"""``region.api-unreachable``."""

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                                "RegistryUnavailable"})
PRESSURE_IDS = {"DiskPressure": "node.disk-pressure", "MemoryPressure": "node.memory-pressure",
                "PIDPressure": "node.pid-pressure"}
EVENT_LINES = 8
"""Latest (collapsed) events quoted as evidence."""


# ----------------------------------------------------------------------------- time and text


def human_duration(seconds: float) -> str:
    """kubectl's short duration (k8s.io/apimachinery duration.HumanDuration): 45s, 3m20s, 5h, 2d21h."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // (24 * 365), (hours // 24) % 365
    return f"{years}y" if days == 0 or years >= 8 else f"{years}y{days}d"


def _stamp(t: float | None) -> str:
    if t is None:
        return "?"
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collapse_events(events: Sequence[EventObs]) -> list[EventObs]:
    """Merge events with the same type, reason and message (counts added), newest last."""
    merged: dict[tuple[str, str, str], EventObs] = {}
    for e in events:
        key = (e.type, e.reason, e.message)
        old = merged.get(key)
        if old is None:
            merged[key] = e
        else:
            firsts = [t for t in (old.first, e.first) if t is not None]
            lasts = [t for t in (old.last, e.last) if t is not None]
            merged[key] = EventObs(e.type, e.reason, e.message, e.source or old.source, old.count + e.count,
                                   min(firsts) if firsts else None, max(lasts) if lasts else None)
    return sorted(merged.values(), key=lambda e: e.last or e.first or 0.0)


def event_lines(events: Sequence[EventObs], now: float, limit: int = EVENT_LINES) -> list[str]:
    """The latest events as `kubectl describe` shows them: ``5m12s (x832 over 2d21h)``."""
    out = []
    for e in collapse_events(events)[-limit:]:
        age = human_duration(now - e.last) if e.last is not None else "?"
        if e.count > 1 and e.first is not None:
            age += f" (x{e.count} over {human_duration(now - e.first)})"
        source = f" {e.source}" if e.source else ""
        out.append(f"event {e.type} {e.reason}{source} {age}: {e.message}")
    return out


def node_condition_lines(node: NodeObs) -> list[str]:
    """The node's Conditions block, one line per condition."""
    return [
        f"node {node.name} {c.type}={c.status} ({c.reason}: {c.message}) since {_stamp(c.since)}"
        for c in node.conditions
    ]


# ----------------------------------------------------------------------------- per pod


def ready_count(pod: PodObs) -> tuple[int, int]:
    regular = [c for c in pod.containers if not c.init]
    return sum(1 for c in regular if c.ready), len(regular)


def status_reason(pod: PodObs) -> str:
    """kubectl's STATUS column: a container's waiting/terminated reason, else the pod's reason or phase."""
    if pod.deleting:
        return "Terminating"
    for c in pod.init_containers:
        if c.state == "waiting" and c.reason and c.reason != "PodInitializing":
            return f"Init:{c.reason}"
        if c.state == "terminated" and c.exit_code not in (0, None):
            return f"Init:{c.reason or 'Error'}"
    reason = pod.reason or pod.phase
    for c in reversed(pod.containers):
        if c.state == "waiting" and c.reason:
            reason = c.reason
        elif c.state == "terminated" and c.reason:
            reason = c.reason
    return reason


def pod_view(pod: PodObs, with_node: bool = False) -> PodView:
    ready, total = ready_count(pod)
    return PodView(
        phase=pod.phase,
        ready=f"{ready}/{total}",
        reason=status_reason(pod),
        restarts=sum(c.restarts for c in pod.containers),
        node=pod.node if with_node else "",
    )


def is_ready(pod: PodObs) -> bool:
    ready, total = ready_count(pod)
    return pod.phase == "Running" and total > 0 and ready == total and not pod.deleting


@dataclass(frozen=True)
class RegionMemory:
    """What the analysis remembers between polls: restart counts seen, to count restarts in a window."""

    restarts: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    """``pod/container`` → (time, restartCount) samples: those within the window plus one before it."""


def remember(memory: RegionMemory, pods: Sequence[PodObs], now: float, window: float) -> RegionMemory:
    out: dict[str, tuple[tuple[float, int], ...]] = {}
    for pod in pods:
        for c in (*pod.init_containers, *pod.containers):
            key = f"{pod.name}/{c.name}"
            samples = [*memory.restarts.get(key, ()), (now, c.restarts)]
            inside = [s for s in samples if now - s[0] <= window]
            before = [s for s in samples if now - s[0] > window]
            out[key] = tuple(before[-1:] + inside)
    return RegionMemory(out)


def restarts_in_window(memory: RegionMemory, pod: str, c: ContainerObs, now: float, window: float) -> int:
    """Restarts within the window, from earlier samples; without history, only a recent last exit counts."""
    samples = memory.restarts.get(f"{pod}/{c.name}", ())
    if samples:
        # The baseline is the count at the window's start: the last sample before it, else the oldest.
        before = [s for s in samples if now - s[0] >= window]
        baseline = before[-1] if before else samples[0]
        return max(0, c.restarts - baseline[1])
    if c.restarts and c.last_finished is not None and now - c.last_finished <= window:
        return 1
    return 0


@dataclass(frozen=True)
class Verdict:
    """What is wrong with one pod, before texts are attached."""

    id: str
    container: str = ""
    """The container at fault (crash loop: whose previous log to read)."""
    detail: str = ""


def judge_pod(pod: PodObs, memory: RegionMemory, now: float, k: KubeSettings) -> Verdict | None:
    """The one problem of a pod (``None``: fine, too young to judge, or Succeeded)."""
    if pod.phase == "Succeeded" or pod.deleting:
        return None
    if pod.phase == "Failed":
        return Verdict("region.pod-evicted") if pod.reason == "Evicted" else None
    for c in (*pod.init_containers, *pod.containers):
        if c.state == "waiting" and c.reason in IMAGE_PULL_REASONS:
            return Verdict("region.pod-image-pull", c.name, c.reason)
    for c in (*pod.init_containers, *pod.containers):
        crashing = c.state == "waiting" and c.reason == "CrashLoopBackOff"
        recent = restarts_in_window(memory, pod.name, c, now, k.restart_window_seconds)
        if crashing or recent >= k.crashloop_restarts:
            return Verdict("region.pod-crashloop", c.name, str(recent))
    young = now - pod.created < k.pod_start_grace_seconds
    if pod.phase in ("Pending", "Unknown"):
        return None if young else Verdict("region.pod-pending")
    if pod.phase == "Running" and not is_ready(pod) and not young:
        cond = pod.condition("Ready")
        since = cond.since if cond is not None and cond.since is not None else pod.created
        if now - since >= k.not_ready_seconds:
            return Verdict("region.pod-not-ready")
    return None


def needs_detail(pods: Sequence[PodObs], memory: RegionMemory, now: float, k: KubeSettings) -> list[tuple[str, str]]:
    """(pod, container whose previous log to read or "") for the pods worth a closer look, capped."""
    out = []
    for pod in pods:
        v = judge_pod(pod, memory, now, k)
        if v is None:
            continue
        out.append((pod.name, v.container if v.id == "region.pod-crashloop" else ""))
    return out[: k.max_detail_pods]


# ----------------------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class RegionResult:
    view: RegionView
    findings: tuple[Finding, ...]
    memory: RegionMemory


def expected_present(prefix: str, pods: Sequence[PodObs]) -> list[PodObs]:
    """Pods that stand for an expected name prefix (``rbd-db`` → ``rbd-db-0``), evicted ones excluded."""
    return [p for p in pods if (p.name == prefix or p.name.startswith(prefix + "-")) and p.phase not in ("Failed", "Succeeded")]


def analyse(
    rules: RuleBook,
    poll: RegionPoll,
    memory: RegionMemory,
    now: float,
    k: KubeSettings,
    region_since: float | None,
) -> RegionResult:
    """Findings of a poll that answered (``poll.error`` empty).

    ``region_since``: when k3s began running (missing pods are judged only once it has been up
    for ``pod_start_grace_seconds``); ``None`` when unknown, then the node's age stands in.
    """
    findings: list[Finding] = []
    disk_nodes = [n for n in poll.nodes if (c := n.condition("DiskPressure")) is not None and c.status == "True"]
    for node in poll.nodes:
        findings += _node_findings(rules, node)
    causes: dict[str, Cause] = {}
    for pod in poll.pods:
        v = judge_pod(pod, memory, now, k)
        if v is not None:
            detail = poll.details.get(pod.name, PodDetail())
            cause = crash_cause(rules, pod.name, detail.log_lines) if v.id == "region.pod-crashloop" else None
            if cause is not None:
                causes[pod.name] = cause
            findings.append(_pod_finding(rules, v, pod, detail, poll.nodes, disk_nodes, memory, now, k, cause))
    since = region_since
    if since is None and poll.nodes:
        since = min(n.created for n in poll.nodes)
    region_old = since is not None and now - since >= k.pod_start_grace_seconds
    missing = [p for p in k.expected_pods if not expected_present(p, poll.pods)]
    if region_old:
        for prefix in missing:
            findings.append(rules.finding(
                "region.pod-missing", prefix,
                evidence=[f"no pod named {prefix}-* in namespace {k.namespace} "
                          f"({len(poll.pods)} pods listed; k3s up for {human_duration(now - since) if since else '?'})"],
                source=f"k8s:pod/{prefix}", scope=PODS_SCOPE,
                details={"namespace": k.namespace},
            ))
    findings = fold(findings, causes, rules.dependencies)
    several = len(poll.nodes) > 1  # a cluster, not the allinone: say where each pod runs
    views = {p.name: pod_view(p, several) for p in poll.pods if p.phase != "Succeeded"}
    ready_pods = sum(1 for p in poll.pods if p.phase != "Succeeded" and is_ready(p))
    all_expected_ready = not missing and all(
        any(is_ready(p) for p in expected_present(prefix, poll.pods)) for prefix in k.expected_pods
    )
    view = RegionView(api="ok", pods_total=len(views), pods_ready=ready_pods, pods=views, ready=all_expected_ready)
    return RegionResult(view, tuple(findings), remember(memory, poll.pods, now, k.restart_window_seconds))


def _node_findings(rules: RuleBook, node: NodeObs) -> list[Finding]:
    out = []
    table = node_condition_lines(node)
    for ctype, pid in PRESSURE_IDS.items():
        c = node.condition(ctype)
        if c is not None and c.status == "True":
            out.append(rules.finding(
                pid, node.name,
                evidence=[f"{ctype}={c.status} since {_stamp(c.since)}: {c.reason}: {c.message}", *table],
                source=f"k8s:node/{node.name}", scope=PODS_SCOPE,
                details={"reason": c.reason, "message": c.message},
            ))
    ready = node.condition("Ready")
    if ready is None or ready.status != "True":
        status = ready.status if ready else "Unknown"
        reason = ready.reason if ready else "no Ready condition"
        message = ready.message if ready else ""
        out.append(rules.finding(
            "node.not-ready", node.name,
            evidence=[f"Ready={status} since {_stamp(ready.since if ready else None)}: {reason}: {message}", *table],
            source=f"k8s:node/{node.name}", scope=PODS_SCOPE,
            details={"reason": reason, "message": message},
        ))
    return out


def _pod_finding(
    rules: RuleBook,
    v: Verdict,
    pod: PodObs,
    detail: PodDetail,
    nodes: Sequence[NodeObs],
    disk_nodes: Sequence[NodeObs],
    memory: RegionMemory,
    now: float,
    k: KubeSettings,
    cause: Cause | None = None,
) -> Finding:
    ready, total = ready_count(pod)
    evidence: list[str] = []
    if len(nodes) > 1:
        evidence.append(f"pod {pod.name} on node {pod.node}" if pod.node else f"pod {pod.name} on no node yet")
    if cause is not None:
        evidence.append(f"cause ({cause.rule_id}): {cause.summary}")
        evidence.append(f"previous log: {cause.line}")
    details = {"namespace": k.namespace, "reason": "", "container": v.container, "ready": f"{ready}/{total}",
               "node_hint_en": "", "node_hint_zh": ""}
    if disk_nodes and v.id in ("region.pod-pending", "region.pod-evicted"):
        # Root cause first: the node's disk pressure is why this pod cannot run.
        names = ", ".join(n.name for n in disk_nodes)
        evidence.append(f"cause: node {names} has DiskPressure (see node.disk-pressure); free disk space first")
        details["node_hint_en"] = f" The node {names} is under disk pressure: free disk space first."
        details["node_hint_zh"] = f" 节点 {names} 磁盘压力过大（DiskPressure），请先清理磁盘空间。"
    if v.id == "region.pod-evicted":
        evidence.append(f"status: Failed, reason Evicted: {pod.message.strip()}")
        details["reason"] = pod.message.strip()
        for node in nodes:
            if not pod.node or node.name == pod.node or len(nodes) == 1:
                evidence += node_condition_lines(node)
        evidence += event_lines(detail.events, now, 4)
    elif v.id == "region.pod-image-pull":
        c = _container(pod, v.container)
        evidence.append(f"container {v.container}: {c.reason if c else v.detail}: {c.message if c else ''}".rstrip(": "))
        details["reason"] = v.detail
        evidence += event_lines([e for e in detail.events if e.type == "Warning" or "image" in e.message.lower()], now)
    elif v.id == "region.pod-crashloop":
        c = _container(pod, v.container)
        if c is not None:
            last = f"exit code {c.last_exit_code}" if c.last_exit_code is not None else "exit code unknown"
            meaning = explain_exit(c.last_exit_code)
            oom = c.last_reason == "OOMKilled"
            reason = c.last_reason or "?"
            evidence.append(
                f"container {c.name}: {c.reason or c.state}, restarted {c.restarts} times "
                f"({v.detail} in the last {human_duration(k.restart_window_seconds)})"
            )
            evidence.append(
                f"last termination: {reason}, {last}" + (f" ({meaning.en})" if meaning and not oom else "")
                + (f" at {_stamp(c.last_finished)}" if c.last_finished else "")
            )
            if oom:
                evidence.append("OOMKilled: the container went over its memory limit or the host ran out of memory")
            details["reason"] = "OOMKilled" if oom else f"{reason}, {last}"
        evidence += event_lines([e for e in detail.events if e.type == "Warning"], now, 2)
        evidence += [f"note: {n}" for n in detail.notes]
        if detail.log_lines:
            # The contract keeps at most 20 evidence lines: the log fills what the header leaves.
            room = max(1, MAX_EVIDENCE_LINES - len(evidence) - 1)
            lines = detail.log_lines[-room:]
            evidence.append(f"--- previous container log ({v.container}), last {len(lines)} lines:")
            evidence += lines
    elif v.id == "region.pod-pending":
        sched = pod.condition("PodScheduled")
        if sched is not None and sched.status != "True":
            evidence.append(f"PodScheduled={sched.status} ({sched.reason}): {sched.message}")
            details["reason"] = sched.reason
        else:
            waiting = [c for c in (*pod.init_containers, *pod.containers) if c.state == "waiting" and c.reason]
            details["reason"] = waiting[0].reason if waiting else "Pending"
            evidence += [f"container {c.name}: {c.reason}: {c.message}".rstrip(": ") for c in waiting]
        evidence.append(f"Pending for {human_duration(now - pod.created)} (created {_stamp(pod.created)})")
        evidence += event_lines(detail.events, now)
    elif v.id == "region.pod-not-ready":
        cond = pod.condition("Ready")
        since = cond.since if cond and cond.since else pod.created
        evidence.append(f"Running, {ready}/{total} containers ready, not ready for {human_duration(now - since)}"
                        + (f" ({cond.reason}: {cond.message})" if cond and cond.reason else ""))
        details["reason"] = cond.message if cond else ""
        evidence += event_lines(detail.events, now)
    if v.id != "region.pod-crashloop":
        evidence += [f"note: {n}" for n in detail.notes]
    return rules.finding(v.id, pod.name, evidence=evidence, source=f"k8s:pod/{pod.name}", scope=PODS_SCOPE,
                         details=details)


def crash_cause(rules: RuleBook, pod: str, log_lines: Sequence[str]) -> Cause | None:
    """The region rule that the previous container's log matches (the latest matching line wins)."""
    if not log_lines:
        return None
    best: tuple[int, str, str] | None = None
    for m in rules.match(log_lines, REGION_COMPONENT):
        if REGION_COMPONENT not in m.rule.components:
            continue  # host rules (disk full ...) are the listener's other checks' business
        last = m.line_numbers[-1]
        if best is None or last > best[0]:
            best = (last, m.rule.id, m.rule.summary.en)
    if best is None:
        return None
    (line,) = bound_evidence([log_lines[best[0]]])
    return Cause(pod, best[1], line, best[2])


def _container(pod: PodObs, name: str) -> ContainerObs | None:
    return next((c for c in (*pod.init_containers, *pod.containers) if c.name == name), None)


_IN_CONTAINER_KUBECTL = "docker exec rainbond-allinone kubectl "


def on_cluster(finding: Finding) -> Finding:
    """The finding for a cluster reached from outside: its ``kubectl`` steps run where the user is,
    not inside the allinone container (the other steps are left as written)."""
    def local(steps: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s.replace(_IN_CONTAINER_KUBECTL, "kubectl ") for s in steps)

    r = finding.remediation
    return replace(finding, remediation=Steps(local(r.zh), local(r.en)))


def unreachable_view(previous: RegionView, reason: str) -> RegionView:
    """The API did not answer: keep the last pod table, say why."""
    return RegionView(api=f"unreachable: {reason}", pods_total=previous.pods_total, pods_ready=previous.pods_ready,
                      pods=previous.pods, ready=False)
