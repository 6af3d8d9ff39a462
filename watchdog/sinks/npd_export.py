"""The rules → Node Problem Detector (NPD) system-log-monitor configs, one per log source; and the
ConfigMap and DaemonSet that run them. Rendering is pure; ``write_export`` is the thin writer.

An NPD system log monitor reads one source (``journald``: a systemd unit's journal, by its
SYSLOG_IDENTIFIER; ``filelog``: a file, each line needing a timestamp) and matches each rule's
``pattern`` against its line buffer. ``error`` rules become ``permanent`` rules that set the
source's node condition (it stays True until NPD restarts); ``warning`` and ``info`` rules
become ``temporary`` rules, i.e. node events. The reason is the rule id in CamelCase; the
English summary follows the matched line in the message (``patternGeneratedMessageSuffix``,
NPD v0.8.21 and later; older ones ignore it). A rule whose regexes RE2 cannot express the same
way is left out, with the reason, never exported broken.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from watchdog.diagnosis.rules import Rule, RuleBook
from watchdog.model import Severity
from watchdog.sinks.npd_patterns import Untranslatable, npd_pattern
from watchdog.sinks.status_file import write_atomic

NAMESPACE = "kube-system"
CONFIGMAP = "rainbond-npd-config"
DAEMONSET = "rainbond-node-problem-detector"
SERVICE_ACCOUNT = "rainbond-node-problem-detector"
"""Bound to the built-in ClusterRole ``system:node-problem-detector`` in deploy/npd/rbac.yaml."""
NPD_IMAGE = "registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.21"
"""The first release that shows a rule's ``patternGeneratedMessageSuffix`` (our English summary)."""
CONFIG_DIR = "/config"
LOOKBACK = "5m"
"""How far back NPD reads at start (upstream's examples use 5m): a restarted NPD sees recent failures again."""
BUFFER_SIZE = 1
"""Lines NPD keeps to match against. Our rules are one-line rules and the exported patterns
never cross a line, so one line is exact, and the cheapest (each rule scans the joined buffer)."""
JOURNAL_DIR = "/var/log/journal"
K3S_CONTAINERD_LOG = "/var/lib/rancher/k3s/agent/containerd/containerd.log"


@dataclass(frozen=True)
class NpdSource:
    """One log NPD watches on every node, and whose rules it takes."""

    name: str
    """File stem (``containerd`` → ``containerd.json``) and monitor name."""
    component: str
    """Our component whose rules apply (rules of ``host`` apply to every one)."""
    plugin: str
    log_path: str
    plugin_config: Mapping[str, str]
    condition: str
    what: str
    """The log, for a person (condition messages)."""


SOURCES: tuple[NpdSource, ...] = (
    NpdSource("containerd", "containerd", "journald", JOURNAL_DIR, {"source": "containerd"},
              "RainbondContainerdProblem", "containerd's journal"),
    NpdSource("kubelet", "k3s", "journald", JOURNAL_DIR, {"source": "kubelet"},
              "RainbondKubeletProblem", "kubelet's journal"),
    NpdSource("k3s", "k3s", "journald", JOURNAL_DIR, {"source": "k3s"},
              "RainbondK3sProblem", "k3s's journal"),
    # k3s's own containerd writes a file, logrus text lines: time="2026-11-30T08:12:44.123456789Z" level=...
    NpdSource("k3s-containerd", "containerd", "filelog", K3S_CONTAINERD_LOG,
              {"timestamp": r'^time="(\S+?)"', "message": "(.*)", "timestampFormat": "2006-01-02T15:04:05.999999999Z07:00"},
              "RainbondK3sContainerdProblem", "k3s's embedded containerd log"),
)


@dataclass(frozen=True)
class Skipped:
    rule: str
    source: str
    reason: str


@dataclass(frozen=True)
class NpdExport:
    configs: Mapping[str, dict[str, Any]]
    """File name → monitor config."""
    skipped: tuple[Skipped, ...] = ()
    extra: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """File name → Kubernetes object (the ConfigMap and the DaemonSet)."""

    def files(self) -> dict[str, str]:
        return {name: dumps(doc) for name, doc in {**self.configs, **self.extra}.items()}


def reason_of(rule_id: str) -> str:
    """``containerd.config-invalid`` → ``ContainerdConfigInvalid`` (NPD reasons are CamelCase)."""
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[.\-]", rule_id) if w)


def sources_for(components: Sequence[str] | None) -> tuple[NpdSource, ...]:
    """The sources whose component is named (all without a selection)."""
    if not components:
        return SOURCES
    return tuple(s for s in SOURCES if s.component in components)


def monitor_config(book: RuleBook, source: NpdSource) -> tuple[dict[str, Any], list[Skipped]]:
    """One source's system-log-monitor config, and the rules left out of it."""
    rules: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    reasons: dict[str, str] = {}
    for rule in book.for_component(source.component):
        reason = reason_of(rule.id)
        if reason in reasons:
            skipped.append(Skipped(rule.id, source.name, f"its reason {reason} is already {reasons[reason]}'s"))
            continue
        try:
            pattern = npd_pattern([p.pattern for p in rule.patterns], [x.pattern for x in rule.exclude])
        except Untranslatable as e:
            skipped.append(Skipped(rule.id, source.name, str(e)))
            continue
        reasons[reason] = rule.id
        rules.append(_npd_rule(rule, source, reason, pattern))
    doc: dict[str, Any] = {
        "plugin": source.plugin,
        "pluginConfig": dict(source.plugin_config),
        "logPath": source.log_path,
        "lookback": LOOKBACK,
        "bufferSize": BUFFER_SIZE,
        "source": f"rainbond-{source.name}-monitor",
        "conditions": [{
            "type": source.condition,
            "reason": f"{reason_of(source.name)}HasNoKnownProblem",
            "message": f"{source.what} shows none of the problems Rainbond's watchdog knows",
        }],
        "rules": rules,
    }
    return doc, skipped


def _npd_rule(rule: Rule, source: NpdSource, reason: str, pattern: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "permanent" if rule.severity is Severity.ERROR else "temporary"}
    if rule.severity is Severity.ERROR:
        out["condition"] = source.condition
    out["reason"] = reason
    out["pattern"] = pattern
    # Texts may name {program} or {subject}: here the program is the source's.
    out["patternGeneratedMessageSuffix"] = re.sub(r"\{(?:program|subject)\}", source.name, rule.summary.en)
    return out


def export_npd(book: RuleBook, components: Sequence[str] | None = None) -> NpdExport:
    """The monitor configs for the selected sources, the ConfigMap holding them and the DaemonSet."""
    configs: dict[str, dict[str, Any]] = {}
    skipped: list[Skipped] = []
    chosen = sources_for(components)
    for source in chosen:
        doc, left_out = monitor_config(book, source)
        configs[f"{source.name}.json"] = doc
        skipped += left_out
    extra = {
        "configmap.json": configmap({name: dumps(doc) for name, doc in configs.items()}),
        "daemonset.json": daemonset(chosen),
    }
    return NpdExport(configs, tuple(skipped), extra)


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def configmap(files: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE, "labels": {"app": DAEMONSET}},
        "data": dict(sorted(files.items())),
    }


def daemonset(sources: Sequence[NpdSource]) -> dict[str, Any]:
    """The upstream NPD image with our configs, reading the sources' logs from the node (read-only)."""
    configs = ",".join(f"{CONFIG_DIR}/{s.name}.json" for s in sources)
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
              {"name": "localtime", "mountPath": "/etc/localtime", "readOnly": True}]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": CONFIGMAP}},
        {"name": "localtime", "hostPath": {"path": "/etc/localtime", "type": "File"}},
    ]
    if any(s.plugin == "journald" for s in sources):
        mounts.append({"name": "journal", "mountPath": JOURNAL_DIR, "readOnly": True})
        volumes.append({"name": "journal", "hostPath": {"path": JOURNAL_DIR}})
    if any(s.plugin == "filelog" for s in sources):
        folder = os.path.dirname(K3S_CONTAINERD_LOG)
        mounts.append({"name": "k3s-containerd-log", "mountPath": folder, "readOnly": True})
        # On a node without k3s the folder is created empty; that monitor then fails alone
        # (NPD stops only when every monitor fails), the journald ones go on.
        volumes.append({"name": "k3s-containerd-log", "hostPath": {"path": folder, "type": "DirectoryOrCreate"}})
    labels = {"app": DAEMONSET}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET, "namespace": NAMESPACE, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "containers": [{
                        "name": "node-problem-detector",
                        "image": NPD_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/node-problem-detector", "--logtostderr",
                                    f"--config.system-log-monitor={configs}"],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "resources": {"limits": {"cpu": "10m", "memory": "80Mi"},
                                      "requests": {"cpu": "10m", "memory": "80Mi"}},
                        # Root reads the journal; nothing else is needed (no kmsg monitor here).
                        "securityContext": {"runAsUser": 0, "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False},
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                    "tolerations": [{"effect": "NoSchedule", "operator": "Exists"},
                                    {"effect": "NoExecute", "operator": "Exists"}],
                },
            },
        },
    }


def write_export(export: NpdExport, out_dir: str) -> list[str]:
    """Write every file into ``out_dir`` (created if missing), each atomically; the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, text in export.files().items():
        path = os.path.join(out_dir, name)
        write_atomic(path, text)
        written.append(path)
    return written
