"""``diagnose --kubeconfig FILE``: the region checks against a cluster of several nodes, through
the real client and the HTTPS stand-in; read-only, bounded by the configured timeout."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube_api import objects
from tests.kube_api.server import KubeApi, kubeconfig_text
from watchdog.cli import main

TIMEOUT = 2.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(f'[kubernetes]\ntimeout_seconds = {TIMEOUT}\nkubeconfig = "{tmp_path}/no-such-kubeconfig"\n')
    return path


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[KubeApi]:
    with KubeApi(objects.scenario("three-nodes", time.time()), tmp_path / "api") as api:
        yield api


def diagnose_json(config: Path, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["diagnose", "--config", str(config), "--kubeconfig", str(kubeconfig), "--json"])
    return code, json.loads(capsys.readouterr().out)


def problems(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["id"], p["subject"]): p for p in doc["problems"]}


def test_three_nodes_node_problems_per_node_and_pods_named_with_their_node(
    config: Path, three_nodes: KubeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = diagnose_json(config, three_nodes.kubeconfig, capsys)
    assert code == 1 and doc["overall"] == "failed"
    found = problems(doc)
    api_pod = three_nodes.cluster.pod("rbd-api-")["metadata"]["name"]
    evicted = next(p["metadata"]["name"] for p in three_nodes.cluster.pods if p["status"].get("reason") == "Evicted")
    assert set(found) == {
        ("node.disk-pressure", "rbd-agent-1"),
        ("node.not-ready", "rbd-agent-2"),
        ("region.pod-crashloop", api_pod),
        ("region.pod-evicted", evicted),
    }
    assert found[("node.not-ready", "rbd-agent-2")]["source"] == "k8s:node/rbd-agent-2"
    assert any("NodeStatusUnknown" in e for e in found[("node.not-ready", "rbd-agent-2")]["evidence"])
    assert f"pod {api_pod} on node rbd-agent-1" in found[("region.pod-crashloop", api_pod)]["evidence"]
    # The evicted pod's evidence: its own node's conditions, not the other nodes'.
    evidence = found[("region.pod-evicted", evicted)]["evidence"]
    assert any(e.startswith("node rbd-agent-1 DiskPressure=True") for e in evidence)
    assert not any("rbd-server-1" in e or "rbd-agent-2" in e for e in evidence)
    pods = doc["components"]["region"]["pods"]
    assert all(v["node"] == p["spec"]["nodeName"] for p in three_nodes.cluster.pods
               for name, v in pods.items() if name == p["metadata"]["name"])
    # DaemonSet pods run once on every node.
    gateways = {v["node"] for name, v in pods.items() if name.startswith("rbd-gateway-")}
    assert gateways == {"rbd-server-1", "rbd-agent-1", "rbd-agent-2"}
    assert pods[three_nodes.cluster.pod("rbd-monitor-0")["metadata"]["name"]]["reason"] == "Terminating"
    assert set(doc["components"]) == {"region", "host"}  # nothing about this machine


def test_the_cluster_is_only_read(config: Path, three_nodes: KubeApi, capsys: pytest.CaptureFixture[str]) -> None:
    diagnose_json(config, three_nodes.kubeconfig, capsys)
    assert three_nodes.writes == []
    paths = {r.split("?", 1)[0] for r in three_nodes.requests}
    assert "/api/v1/nodes" in paths and "/api/v1/namespaces/rbd-system/pods" in paths
    assert all(p.startswith(("/api/v1/nodes", "/api/v1/namespaces/rbd-system/")) for p in paths), paths


def test_text_output_names_the_nodes(config: Path, three_nodes: KubeApi, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diagnose", "--config", str(config), "--kubeconfig", str(three_nodes.kubeconfig)])
    out = capsys.readouterr().out
    assert code == 1
    assert "node.not-ready (rbd-agent-2)" in out and "node.disk-pressure (rbd-agent-1)" in out
    # kubectl runs where the user is, not in an allinone container.
    assert "`kubectl describe node rbd-agent-2`" in out and "docker exec rainbond-allinone kubectl" not in out


def test_a_single_node_cluster_has_no_node_column(tmp_path: Path, config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with KubeApi(objects.scenario("healthy", time.time()), tmp_path / "api") as api:
        code, doc = diagnose_json(config, api.kubeconfig, capsys)
    assert code == 0 and doc["overall"] == "healthy" and doc["phase"] == "ready"
    assert doc["problems"] == []
    assert all("node" not in v for v in doc["components"]["region"]["pods"].values())


def test_nothing_reachable_exits_2_with_the_reason(tmp_path: Path, config: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with KubeApi(objects.scenario("healthy", time.time()), tmp_path / "api") as api:
        ca = api.pki.ca_pem
    # The stand-in is gone: its port refuses.
    kubeconfig = tmp_path / "refused.yaml"
    kubeconfig.write_text(kubeconfig_text(api.url, ca, "token"))
    code, doc = diagnose_json(config, kubeconfig, capsys)
    assert code == 2
    [problem] = doc["problems"]
    assert problem["id"] == "region.api-unreachable"
    assert doc["components"]["region"]["api"].startswith("unreachable: connection refused")


def test_a_hung_api_is_given_up_on_within_the_timeout(config: Path, three_nodes: KubeApi,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    three_nodes.set_fault("hang")
    started = time.monotonic()
    code, doc = diagnose_json(config, three_nodes.kubeconfig, capsys)
    took = time.monotonic() - started
    three_nodes.set_fault(None)
    assert code == 2 and doc["problems"][0]["id"] == "region.api-unreachable"
    assert took < TIMEOUT + 3.0, took  # the client import and kubeconfig load come on top of the timeout


@pytest.mark.parametrize("extra", [["--write"], []])
def test_bad_usage_exits_2(tmp_path: Path, config: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "kubeconfig" if extra else tmp_path / "missing"
    kubeconfig.write_text("") if extra else None
    assert main(["diagnose", "--config", str(config), "--kubeconfig", str(kubeconfig), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rainbond-watchdog diagnose: ")


def test_the_three_node_scenario_is_consistent_as_an_apiserver_would_serve_it() -> None:
    c = objects.scenario("three-nodes", time.time())
    ips = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in c.nodes}
    assert len(ips) == 3 and len(set(ips.values())) == 3
    for n in c.nodes:
        assert {x["type"] for x in n["status"]["conditions"]} == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    unreachable = next(n for n in c.nodes if n["metadata"]["name"] == "rbd-agent-2")
    assert {t["key"] for t in unreachable["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    names = [p["metadata"]["name"] for p in c.pods]
    assert len(names) == len(set(names))
    for p in c.pods:
        node = p["spec"]["nodeName"]
        assert p["status"]["hostIP"] == ips[node]
        if p["spec"]["hostNetwork"]:
            assert p["status"]["podIP"] == ips[node]
