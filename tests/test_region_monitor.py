"""Region checks end to end: the Monitor polls the HTTPS stand-in through the real client.

One scenario per region/node id, a healthy 16-pod region, root cause first, and the API
failures that must not stop the listener from answering supervisord.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import frame, state_frame, wait_for
from tests.kube_api import objects
from tests.kube_api.harness import (
    envelope,
    k3s_running_monitor,
    poll_now,
    region_ids,
    region_settings,
    running_api,
)
from watchdog.diagnosis.rules import RuleBook
from watchdog.sinks.status_file import render

SCENARIOS: dict[str, set[tuple[str, str]]] = {
    "crashloop": {("region.pod-crashloop", "rbd-api-6f6c565856-bq9bp")},
    "oom": {("region.pod-crashloop", "rbd-monitor-0")},
    "etcd-down": {("region.pod-pending", "rbd-etcd-0")},
    "pending": {("region.pod-pending", "rbd-etcd-0")},
    "evicted": {("region.pod-evicted", "rbd-hub-64777d89d8-vvjn5")},
    "image-pull": {("region.pod-image-pull", "rbd-worker-8664fb5d9-zcfw4")},
    "not-ready": {("region.pod-not-ready", "rbd-db-0")},
    "missing": {("region.pod-missing", "rbd-api")},
    "disk-pressure": {("node.disk-pressure", objects.NODE), ("region.pod-evicted", "rbd-chaos-xn6zr"),
                      ("region.pod-pending", "rbd-eventlog-0")},
    "memory-pressure": {("node.memory-pressure", objects.NODE)},
    "pid-pressure": {("node.pid-pressure", objects.NODE)},
    "node-not-ready": {("node.not-ready", objects.NODE)},
}


FOLDED_CRASHES = {"etcd-down": 2}


def test_healthy_region_of_16_pods_raises_nothing(tmp_path: Path, rulebook: RuleBook) -> None:
    """The seed's 16 Running pods and a Ready node: no problem, ready, two requests per poll."""
    with running_api(tmp_path / "api") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig, pod_start_grace_seconds=0.0), rulebook)
        poll_now(mon)
        assert region_ids(mon) == set()
        assert len(api.requests) == 2
        assert {r.split("?")[0] for r in api.requests} == {"/api/v1/namespaces/rbd-system/pods", "/api/v1/nodes"}
    region = render(mon.snapshot(time.time()))["components"]["region"]
    assert region["api"] == "ok" and region["pods_total"] == 16 and region["pods_ready"] == 16
    assert region["pods"]["rbd-db-0"] == {"phase": "Running", "ready": "2/2", "reason": "Running", "restarts": 0}
    assert mon.region.ready


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_scenario_raises_its_problem(tmp_path: Path, rulebook: RuleBook, scenario: str) -> None:
    """Each realistic scenario raises exactly its region/node problems."""
    with running_api(tmp_path / "api", scenario) as api:
        settings = region_settings(tmp_path, api.kubeconfig, pod_start_grace_seconds=0.0)
        mon = k3s_running_monitor(settings, rulebook)
        poll_now(mon)
        assert region_ids(mon) == SCENARIOS[scenario]
        # Cost: two lists, plus events (and a previous log for crash loops) per unhealthy pod only.
        unhealthy = sum(1 for k in SCENARIOS[scenario] if k[0].startswith("region.pod-") and k[0] != "region.pod-missing")
        crashes = sum(1 for k in SCENARIOS[scenario] if k[0] == "region.pod-crashloop")
        folded = FOLDED_CRASHES.get(scenario, 0)  # crash-looping dependents folded into another's problem
        assert len(api.requests) == 2 + unhealthy + crashes + 2 * folded
    assert not mon.region.ready or scenario in ("memory-pressure", "pid-pressure", "node-not-ready", "evicted")


def problem(mon: object, pid: str) -> dict:
    doc = render(mon.snapshot(time.time()))  # type: ignore[attr-defined]
    return next(p for p in doc["problems"] if p["id"] == pid)


def test_crashloop_evidence_quotes_the_previous_log(tmp_path: Path, rulebook: RuleBook) -> None:
    """The last termination (exit code decoded) and the previous container's lines are the evidence."""
    with running_api(tmp_path / "api", "crashloop") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig), rulebook)
        poll_now(mon)
    p = problem(mon, "region.pod-crashloop")
    assert p["source"] == "k8s:pod/rbd-api-6f6c565856-bq9bp" and p["severity"] == "error"
    assert any("exit code 1" in e for e in p["evidence"])
    assert "i/o timeout" in p["evidence"][-1]
    assert "--previous" in " ".join(p["remediation"]["en"])
    assert mon.region.pods["rbd-api-6f6c565856-bq9bp"].reason == "CrashLoopBackOff"


def test_etcd_down_is_one_problem_naming_the_pods_it_takes_down(tmp_path: Path, rulebook: RuleBook) -> None:
    """rbd-etcd pending, rbd-api and rbd-worker crash-looping with "connect to etcd failed": one problem."""
    with running_api(tmp_path / "api", "etcd-down") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig), rulebook)
        poll_now(mon)
    doc = render(mon.snapshot(time.time()))
    assert [(p["id"], p["subject"]) for p in doc["problems"]] == [("region.pod-pending", "rbd-etcd-0")]
    p = doc["problems"][0]
    assert p["evidence"][0] == "takes down 2 other pod(s): rbd-api-6f6c565856-bq9bp, rbd-worker-8664fb5d9-zcfw4"
    api_line = next(e for e in p["evidence"] if e.startswith("rbd-api-6f6c565856-bq9bp:"))
    assert "region.pod-crashloop because it cannot reach rbd-etcd" in api_line and "create etcd" in api_line
    assert any(e.startswith("rbd-worker-8664fb5d9-zcfw4:") and "connect to etcd failed" in e for e in p["evidence"])
    assert any("FailedScheduling" in e for e in p["evidence"])  # its own evidence is kept
    assert "rbd-api-6f6c565856-bq9bp" in p["summary"]["en"] and "rbd-worker-8664fb5d9-zcfw4" in p["summary"]["zh"]
    # The pod table still shows the dependents as they are.
    assert mon.region.pods["rbd-api-6f6c565856-bq9bp"].reason == "CrashLoopBackOff"


def test_crashloop_with_etcd_up_keeps_its_own_problem_with_the_cause_first(tmp_path: Path, rulebook: RuleBook) -> None:
    """rbd-etcd is ready: the dependency is not the cause; rbd-api's problem says what its log says."""
    with running_api(tmp_path / "api", "crashloop") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig), rulebook)
        poll_now(mon)
    p = problem(mon, "region.pod-crashloop")
    assert p["evidence"][0].startswith("cause (region.etcd-unreachable): ")
    assert "connect to etcd failed" in p["evidence"][1]


def test_pending_evidence_collapses_events_like_kubectl(tmp_path: Path, rulebook: RuleBook) -> None:
    """The scheduler's repeated event reads "(x832 over 2d21h)"."""
    with running_api(tmp_path / "api", "pending") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig), rulebook)
        poll_now(mon)
    p = problem(mon, "region.pod-pending")
    assert any("FailedScheduling" in e and "(x832 over 2d21h)" in e for e in p["evidence"])


def test_k3s_down_means_no_region_diagnosis(tmp_path: Path, rulebook: RuleBook) -> None:
    """Root cause first: when k3s stops, region problems resolve and the API is not asked."""
    with running_api(tmp_path / "api", "crashloop") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig), rulebook)
        poll_now(mon)
        assert region_ids(mon)
        mon.handle(envelope(state_frame("BACKOFF", "k3s", serial=20)))
        asked = len(api.requests)
        poll_now(mon)
        assert region_ids(mon) == set() and mon.region.api == "not-started"
        assert len(api.requests) == asked
    assert any(p.finding.id == "region.pod-crashloop" for p in mon.book.resolved)


def test_containerd_down_means_no_region_diagnosis(tmp_path: Path, rulebook: RuleBook) -> None:
    """containerd down: the region is not polled either."""
    with running_api(tmp_path / "api", "missing") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig, pod_start_grace_seconds=0.0), rulebook)
        mon.handle(envelope(state_frame("FATAL", "containerd", serial=20)))
        poll_now(mon)
        assert region_ids(mon) == set() and api.requests == []


def test_no_kubeconfig_yet_is_not_started_not_a_problem(tmp_path: Path, rulebook: RuleBook) -> None:
    """k3s RUNNING but no kubeconfig written yet: "not-started", nothing raised."""
    mon = k3s_running_monitor(region_settings(tmp_path, tmp_path / "absent.yaml"), rulebook)
    poll_now(mon)
    assert mon.region.api == "not-started" and region_ids(mon) == set()


def test_kubeconfig_from_the_environment(tmp_path: Path, rulebook: RuleBook) -> None:
    """$KUBECONFIG is the fallback when the configured file does not exist."""
    with running_api(tmp_path / "api") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, tmp_path / "absent.yaml"), rulebook)
        mon.kube_env = {"KUBECONFIG": str(api.kubeconfig)}
        poll_now(mon)
    assert mon.region.api == "ok"


def test_unreachable_api_freezes_pod_problems(tmp_path: Path, rulebook: RuleBook) -> None:
    """While the API fails, pod problems are neither raised nor resolved; then all heals."""
    with running_api(tmp_path / "api", "crashloop") as api:
        s = region_settings(tmp_path, api.kubeconfig, poll_seconds=0.01)
        mon = k3s_running_monitor(s, rulebook)
        poll_now(mon)
        crash = ("region.pod-crashloop", "rbd-api-6f6c565856-bq9bp")
        assert region_ids(mon) == {crash}
        api.set_fault("500")
        api.cluster = objects.healthy(time.time())
        poll_now(mon)
        assert region_ids(mon) == {crash, ("region.api-unreachable", "k3s-api")}
        assert mon.region.api == "unreachable: server error"
        p = problem(mon, "region.api-unreachable")
        assert "HTTP 500" in p["summary"]["en"] and "etcdserver" in p["evidence"][0]
        api.set_fault(None)
        poll_now(mon)
        assert region_ids(mon) == set() and mon.region.api == "ok"


def test_unreachable_within_grace_is_not_a_problem(tmp_path: Path, rulebook: RuleBook) -> None:
    """Right after k3s starts, an API that refuses is "starting", not a problem."""
    with running_api(tmp_path / "api") as api:
        api.set_fault("500")
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig, api_grace_seconds=600.0), rulebook)
        poll_now(mon)
    assert mon.region.api == "unreachable: server error" and region_ids(mon) == set()


def test_detail_requests_are_capped_per_poll(tmp_path: Path, rulebook: RuleBook) -> None:
    """max_detail_pods=1: one pod's events only, whatever else looks wrong; both still raised."""
    with running_api(tmp_path / "api", "disk-pressure") as api:
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig, max_detail_pods=1), rulebook)
        poll_now(mon)
        assert len(api.requests) == 3
    assert len(region_ids(mon)) == 3


def test_status_file_carries_the_region(tmp_path: Path, rulebook: RuleBook) -> None:
    """The written status file shows components.region per the contract and the problems."""
    with running_api(tmp_path / "api", "image-pull") as api:
        s = region_settings(tmp_path, api.kubeconfig)
        mon = k3s_running_monitor(s, rulebook)
        poll_now(mon)
        mon.publish([], time.time(), force=True)
    doc = json.loads(Path(s.status_file).read_text())
    region = doc["components"]["region"]
    assert set(region) == {"api", "pods_total", "pods_ready", "pods"}
    assert region["pods"]["rbd-worker-8664fb5d9-zcfw4"]["reason"] == "ImagePullBackOff"
    assert region["pods_total"] == 16 and region["pods_ready"] == 15
    assert any(p["id"] == "region.pod-image-pull" for p in doc["problems"])
    assert doc["overall"] == "failed"


def test_first_poll_is_off_the_event_path(tmp_path: Path, rulebook: RuleBook) -> None:
    """A TICK that starts the very first poll (client import included) returns at once."""
    with running_api(tmp_path / "api") as api:
        api.set_fault("hang")
        mon = k3s_running_monitor(region_settings(tmp_path, api.kubeconfig, timeout_seconds=1.0), rulebook)
        started = time.monotonic()
        mon.handle(envelope(frame("TICK_5", "when:1", 30)))
        assert time.monotonic() - started < 0.5
        assert mon.region.api == "not-started"  # nothing known yet
        wait_for(lambda: mon.wait_background(0.1), timeout=10, what="the poll to time out")
        mon.handle(envelope(frame("TICK_5", "when:2", 31)))
        assert mon.region.api == "unreachable: timeout"
