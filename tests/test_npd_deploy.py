"""deploy/npd/ and the generated ConfigMap and DaemonSet, read as Kubernetes objects by the
``kubernetes`` client's own models (``ApiClient.deserialize``, as for an API answer)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from watchdog.app import load_rulebook
from watchdog.config import load_settings
from watchdog.sinks.npd_export import SOURCES, daemonset, export_npd, sources_for

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "npd"
KINDS = {"DaemonSet": "V1DaemonSet", "ConfigMap": "V1ConfigMap", "ServiceAccount": "V1ServiceAccount",
         "ClusterRoleBinding": "V1ClusterRoleBinding"}


def as_object(doc: dict[str, Any]) -> Any:
    """The client's model of ``doc``; every field must survive the round trip (a misspelt or
    misplaced key would be dropped silently by the model, so it is compared back)."""
    api = ApiClient()
    obj = api.deserialize(json.dumps(doc), KINDS[doc["kind"]], "application/json")
    assert api.sanitize_for_serialization(obj) == doc
    return obj


def deploy_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_the_example_daemonset_is_what_the_export_generates_for_every_source() -> None:
    [doc] = deploy_docs("daemonset.yaml")
    assert doc == daemonset(SOURCES)
    ds = as_object(doc)
    assert ds.spec.template.spec.containers[0].image.startswith("registry.k8s.io/node-problem-detector/")


def test_rbac_binds_the_daemonsets_service_account_to_npds_role() -> None:
    sa, binding = (as_object(d) for d in deploy_docs("rbac.yaml"))
    ds = as_object(daemonset(SOURCES))
    assert sa.metadata.name == ds.spec.template.spec.service_account_name
    assert sa.metadata.namespace == ds.metadata.namespace
    assert binding.role_ref.name == "system:node-problem-detector"
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
        ("ServiceAccount", sa.metadata.name, sa.metadata.namespace)]


@pytest.mark.parametrize("components", [None, ["containerd"], ["k3s"]])
def test_generated_configmap_and_daemonset_fit_together(components: list[str] | None) -> None:
    export = export_npd(load_rulebook(load_settings(None)), components)
    cm = as_object(export.extra["configmap.json"])
    ds = as_object(export.extra["daemonset.json"])
    assert sorted(cm.data) == sorted(export.configs)
    for name, text in cm.data.items():
        assert json.loads(text) == export.configs[name]
    pod = ds.spec.template.spec
    [container] = pod.containers
    flag = next(a for a in container.command if a.startswith("--config.system-log-monitor="))
    listed = flag.split("=", 1)[1].split(",")
    config_mount = next(m for m in container.volume_mounts if m.name == "config")
    assert sorted(listed) == sorted(f"{config_mount.mount_path}/{n}" for n in cm.data)
    config_volume = next(v for v in pod.volumes if v.name == "config")
    assert config_volume.config_map.name == cm.metadata.name
    assert ds.spec.selector.match_labels == ds.spec.template.metadata.labels
    # Every source's log is on a read-only host mount.
    host = {v.name: v.host_path.path for v in pod.volumes if v.host_path is not None}
    mounted = {m.mount_path: host[m.name] for m in container.volume_mounts if m.name in host and m.read_only}
    for source in sources_for(components):
        assert any(source.log_path == p or source.log_path.startswith(p.rstrip("/") + "/")
                   for p in mounted.values()), source.name
