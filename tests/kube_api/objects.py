"""Kubernetes objects as a k3s apiserver returns them (JSON wire shape, core/v1), and scenarios.

Field names and value shapes follow the Kubernetes API reference (Pod, Node, Event, Status):
camelCase keys, RFC 3339 timestamps, ``containerStatuses[].state`` with exactly one of
``running`` / ``waiting`` / ``terminated``, ``lastState`` empty or ``terminated``, owner
references, QoS class, the node's conditions with heartbeat and transition times.
Times are relative to ``now`` so that a scenario built at test time looks like a live cluster.
"""
from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NAMESPACE = "rbd-system"
NODE = "rainbond-allinone"
NODE_IP = "172.17.0.2"
DAY = 86400.0

# The 16 pods of the seed's `kubectl get pod -n rbd-system` listing: (name, owner kind, containers)
SEED_PODS: list[tuple[str, str, tuple[str, ...]]] = [
    ("rbd-etcd-0", "StatefulSet", ("rbd-etcd",)),
    ("rainbond-operator-5f785ff5f6-2dvq6", "ReplicaSet", ("operator",)),
    ("rbd-gateway-4ss6z", "DaemonSet", ("rbd-gateway",)),
    ("rbd-hub-64777d89d8-vvjn5", "ReplicaSet", ("rbd-hub",)),
    ("rbd-node-bsmnj", "DaemonSet", ("rbd-node",)),
    ("rbd-webcli-8c6849dc6-8lx98", "ReplicaSet", ("rbd-webcli",)),
    ("rbd-mq-5fcfb64d86-w8bjl", "ReplicaSet", ("rbd-mq",)),
    ("rbd-monitor-0", "StatefulSet", ("rbd-monitor",)),
    ("kubernetes-dashboard-fbd4fb949-5lf88", "ReplicaSet", ("kubernetes-dashboard",)),
    ("dashboard-metrics-scraper-7db45b8bb4-mqbpm", "ReplicaSet", ("dashboard-metrics-scraper",)),
    ("rbd-resource-proxy-8654b98bc9-4rvnq", "ReplicaSet", ("rbd-resource-proxy",)),
    ("rbd-db-0", "StatefulSet", ("rbd-db", "rbd-db-metrics")),
    ("rbd-chaos-xn6zr", "DaemonSet", ("rbd-chaos",)),
    ("rbd-worker-8664fb5d9-zcfw4", "ReplicaSet", ("rbd-worker",)),
    ("rbd-eventlog-0", "StatefulSet", ("rbd-eventlog",)),
    ("rbd-api-6f6c565856-bq9bp", "ReplicaSet", ("rbd-api",)),
]
REGISTRY = "registry.cn-hangzhou.aliyuncs.com/goodrain"
VERSION = "v5.17.3-release"


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(data: bytes) -> Any:
    """Stable names and ids (not security): sha256 cut short."""
    return hashlib.sha256(data)


def _uid(*parts: str) -> str:
    return str(uuid.UUID(_digest("/".join(parts).encode()).hexdigest()[:32]))


def _cid(name: str, n: int = 0) -> str:
    return "containerd://" + hashlib.sha256(f"{name}-{n}".encode()).hexdigest()


def _image(container: str) -> str:
    base = container if container.startswith("rbd-") else f"rbd-{container}" if container == "operator" else container
    return f"{REGISTRY}/{base}:{VERSION}"


def _owner(name: str, kind: str) -> tuple[str, list[dict[str, Any]], dict[str, str]]:
    """generateName, ownerReferences and labels for a pod owned by ``kind``."""
    if kind == "StatefulSet":
        app = name.rsplit("-", 1)[0]
        owner = app
        labels = {"name": app, "controller-revision-hash": f"{app}-6d8f9b7c5", "statefulset.kubernetes.io/pod-name": name}
    elif kind == "DaemonSet":
        app = name.rsplit("-", 1)[0]
        owner = app
        labels = {"name": app, "controller-revision-hash": "7c9d9f6b8", "pod-template-generation": "1"}
    else:
        app = name.rsplit("-", 2)[0]
        owner = name.rsplit("-", 1)[0]
        labels = {"name": app, "pod-template-hash": owner.rsplit("-", 1)[1]}
    labels["creator"] = "Rainbond" if app != "rainbond-operator" else "helm"
    if app.startswith(("kubernetes-dashboard", "dashboard-metrics")):
        labels = {"k8s-app": app, **{k: v for k, v in labels.items() if k != "creator"}}
    generate = name.rsplit("-", 1)[0] + "-" if kind != "StatefulSet" else ""
    ref = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": owner,
        "uid": _uid("owner", owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return generate, [ref], labels


def container_spec(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": _image(name),
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def running_status(name: str, started: float, restarts: int = 0, ready: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "state": {"running": {"startedAt": ts(started)}},
        "lastState": {},
        "ready": ready,
        "restartCount": restarts,
        "image": _image(name),
        "imageID": _image(name).split(":")[0] + "@sha256:" + hashlib.sha256(name.encode()).hexdigest(),
        "containerID": _cid(name, restarts),
        "started": True,
    }


def pod(name: str, kind: str, containers: tuple[str, ...], created: float, now: float) -> dict[str, Any]:
    """A healthy Running pod, every container ready, as `kubectl get pod -o json` shows it."""
    generate, owners, labels = _owner(name, kind)
    started = created + 20
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": _uid("pod", name),
        "resourceVersion": "0",
        "creationTimestamp": ts(created),
        "labels": labels,
        "ownerReferences": owners,
    }
    if generate:
        meta["generateName"] = generate
    return {
        "metadata": meta,
        "spec": {
            "volumes": [
                {
                    "name": "kube-api-access-" + _digest(name.encode()).hexdigest()[:5],
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [container_spec(c) for c in containers],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "rainbond-operator",
            "serviceAccount": "rainbond-operator",
            "nodeName": NODE,
            "hostNetwork": kind == "DaemonSet",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(created + 1)},
                {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(started + 5)},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(started + 5)},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(created)},
            ],
            "hostIP": NODE_IP,
            "podIP": "10.42.0." + str(int(_digest(name.encode()).hexdigest(), 16) % 250 + 2),
            "podIPs": [{"ip": "10.42.0." + str(int(_digest(name.encode()).hexdigest(), 16) % 250 + 2)}],
            "startTime": ts(created),
            "containerStatuses": [running_status(c, started) for c in containers],
            "qosClass": "BestEffort",
        },
    }


def _set_condition(p: dict[str, Any], ctype: str, status: str, since: float, reason: str = "", message: str = "") -> None:
    conds = p["status"].setdefault("conditions", [])
    for c in conds:
        if c["type"] == ctype:
            break
    else:
        c = {"type": ctype, "lastProbeTime": None}
        conds.append(c)
    c.update(status=status, lastTransitionTime=ts(since))
    for k, v in (("reason", reason), ("message", message)):
        if v:
            c[k] = v
        else:
            c.pop(k, None)


def node(now: float, created: float, conditions: dict[str, tuple[str, str, str, float]] | None = None,
         name: str = NODE, ip: str = NODE_IP, control_plane: bool = True, heartbeat: float | None = None,
         pod_cidr: str = "10.42.0.0/24") -> dict[str, Any]:
    """A node (by default the single allinone one); ``conditions`` overrides type → (status,
    reason, message, since); ``heartbeat``: when the kubelet last posted its status."""
    hb = ts(now - 7 if heartbeat is None else heartbeat)
    base = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", created + 10),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", created + 10),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", created + 10),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status. AppArmor enabled", created + 30),
    }
    base.update(conditions or {})
    taints = []
    if base["DiskPressure"][0] == "True":
        taints.append({"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": ts(base["DiskPressure"][3])})
    if base["MemoryPressure"][0] == "True":
        taints.append({"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule", "timeAdded": ts(base["MemoryPressure"][3])})
    if base["Ready"][0] == "Unknown":
        # The node lifecycle controller: the kubelet stopped posting, the node is unreachable.
        taints += [{"key": "node.kubernetes.io/unreachable", "effect": e, "timeAdded": ts(base["Ready"][3])}
                   for e in ("NoSchedule", "NoExecute")]
    elif base["Ready"][0] != "True":
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule", "timeAdded": ts(base["Ready"][3])})
    spec: dict[str, Any] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr], "providerID": f"k3s://{name}"}
    if taints:
        spec["taints"] = taints
    roles = {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"} if control_plane else {}
    return {
        "metadata": {
            "name": name,
            "uid": _uid("node", name),
            "resourceVersion": "0",
            "creationTimestamp": ts(created),
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": "k3s",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                **roles,
                "node.kubernetes.io/instance-type": "k3s",
            },
            "annotations": {"k3s.io/node-args": '["server","--disable","traefik"]' if control_plane else '["agent"]',
                            "k3s.io/internal-ip": ip},
        },
        "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "ephemeral-storage": "61255492Ki", "memory": "8147756Ki", "pods": "110"},
            "allocatable": {"cpu": "4", "ephemeral-storage": "59589847191", "memory": "8147756Ki", "pods": "110"},
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "lastHeartbeatTime": hb,
                    "lastTransitionTime": ts(since),
                    "reason": r,
                    "message": m,
                }
                for t, (s, r, m, since) in base.items()
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "0c6a1b6e8f7d4a7e9d3c2b1a09f8e7d6",
                "systemUUID": "0c6a1b6e-8f7d-4a7e-9d3c-2b1a09f8e7d6",
                "bootID": "5d2c7a51-7f43-4a8b-b4a4-1e0f9b2c3d4e",
                "kernelVersion": "5.15.0-91-generic",
                "osImage": "K3s dev",
                "containerRuntimeVersion": "containerd://1.7.11-k3s2",
                "kubeletVersion": "v1.25.16+k3s4",
                "kubeProxyVersion": "v1.25.16+k3s4",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }


def event(pod_name: str, pod_uid: str, etype: str, reason: str, message: str, first: float, last: float,
          count: int, component: str = "kubelet", field_path: str = "") -> dict[str, Any]:
    """A core/v1 Event about a pod (the deduplicated form: count, firstTimestamp, lastTimestamp)."""
    involved: dict[str, Any] = {
        "kind": "Pod",
        "namespace": NAMESPACE,
        "name": pod_name,
        "uid": pod_uid,
        "apiVersion": "v1",
        "resourceVersion": "0",
    }
    if field_path:
        involved["fieldPath"] = field_path
    source: dict[str, Any] = {"component": component}
    if component == "kubelet":
        source["host"] = NODE
    return {
        "metadata": {
            "name": f"{pod_name}.{int(first * 1e6) & 0xFFFFFFFFFFFF:x}",
            "namespace": NAMESPACE,
            "uid": _uid("event", pod_name, reason, str(first)),
            "resourceVersion": "0",
            "creationTimestamp": ts(first),
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
        "count": count,
        "type": etype,
        "eventTime": None,
        "reportingComponent": "" if component == "kubelet" else component,
        "reportingInstance": "",
    }


@dataclass
class Cluster:
    """What the stand-in serves: pods and events of the namespace, nodes, previous container logs."""

    pods: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[tuple[str, str, bool], list[str]] = field(default_factory=dict)
    """(pod, container, previous) → log lines."""

    def pod(self, prefix: str) -> dict[str, Any]:
        return next(p for p in self.pods if p["metadata"]["name"].startswith(prefix))


def healthy(now: float, age: float = 2 * DAY + 22 * 3600, extra_pods: int = 0) -> Cluster:
    """The seed's 16 pods, all n/n Running for 2d22h, one Ready node (plus ``extra_pods`` copies)."""
    created = now - age
    pods = [pod(n, k, c, created, now) for n, k, c in SEED_PODS]
    for i in range(extra_pods):
        name = f"rbd-app-{i:05d}-5d9c8b7f6-{_digest(str(i).encode()).hexdigest()[:5]}"
        pods.append(pod(name, "ReplicaSet", ("app",), created, now))
    return Cluster(pods=pods, nodes=[node(now, now - 3 * DAY)])


def _crash(c: Cluster, now: float, prefix: str, reason: str, exit_code: int, lines: list[str]) -> None:
    p = c.pod(prefix)
    name = p["metadata"]["name"]
    cname = p["spec"]["containers"][0]["name"]
    restarts = 17
    st = p["status"]
    cs = st["containerStatuses"][0]
    cs.update(
        state={"waiting": {"reason": "CrashLoopBackOff",
                           "message": f"back-off 5m0s restarting failed container={cname} pod={name}_{NAMESPACE}({p['metadata']['uid']})"}},
        lastState={"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": ts(now - 95),
                                  "finishedAt": ts(now - 80), "containerID": _cid(cname, restarts)}},
        ready=False,
        restartCount=restarts,
        started=False,
        containerID=_cid(cname, restarts),
    )
    _set_condition(p, "Ready", "False", now - 80, "ContainersNotReady", f"containers with unready status: [{cname}]")
    _set_condition(p, "ContainersReady", "False", now - 80, "ContainersNotReady", f"containers with unready status: [{cname}]")
    c.events.append(event(name, p["metadata"]["uid"], "Warning", "BackOff", "Back-off restarting failed container",
                          now - 3600, now - 20, 246, field_path=f"spec.containers{{{cname}}}"))
    c.logs[(name, cname, True)] = lines
    c.logs[(name, cname, False)] = []


def scenario(name: str, now: float, extra_pods: int = 0) -> Cluster:
    """Build one named scenario (see SCENARIOS)."""
    c = healthy(now, extra_pods=extra_pods)
    if name == "healthy":
        return c
    if name == "crashloop":
        _crash(c, now, "rbd-api-", "Error", 1, [
            'time="2026-11-30T08:10:01Z" level=info msg="start api server"',
            'time="2026-11-30T08:10:01Z" level=info msg="create etcd client v3 in single mode"',
            'time="2026-11-30T08:10:06Z" level=error msg="connect to etcd failed: context deadline exceeded"',
            'time="2026-11-30T08:10:06Z" level=error msg="start api server failure: dial tcp 10.43.12.7:2379: i/o timeout"',
        ])
        return c
    if name == "etcd-down":
        # rbd-etcd cannot be scheduled (its volume is unbound); rbd-api and rbd-worker crash-loop
        # because they cannot reach it: one problem, rbd-etcd's, naming both (issue 12).
        p = c.pod("rbd-etcd-0")
        _make_pending(c, p, now, "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                                  "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
        _crash(c, now, "rbd-api-", "Error", 1, [
            'time="2026-11-30T08:10:01Z" level=info msg="start api server"',
            'time="2026-11-30T08:10:06Z" level=error msg="create etcd.v3 client failed, try time is 10,context deadline exceeded"',
            'time="2026-11-30T08:10:06Z" level=error msg="create etcd client v3 error, context deadline exceeded"',
        ])
        _crash(c, now, "rbd-worker-", "Error", 1, [
            'time="2026-11-30T08:10:02Z" level=info msg="start worker"',
            'time="2026-11-30T08:10:07Z" level=error msg="connect to etcd failed: context deadline exceeded"',
        ])
        return c
    if name == "oom":
        _crash(c, now, "rbd-monitor-0", "OOMKilled", 137, [
            "level=info ts=2026-11-30T08:10:01.123Z caller=main.go:556 msg=\"Starting Prometheus\"",
            "level=info ts=2026-11-30T08:10:04.987Z caller=head.go:540 component=tsdb msg=\"Replaying WAL, this may take a while\"",
        ])
        return c
    if name == "pending":
        p = c.pod("rbd-etcd-0")
        _make_pending(c, p, now, "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                                  "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
        return c
    if name == "evicted":
        _evict(c, now, "rbd-hub-", "The node was low on resource: ephemeral-storage. Threshold quantity: 6125549Ki, "
                                   "available: 4718592Ki. Container rbd-hub was using 2371584Ki, request is 0, has larger consumption of ephemeral-storage. ")
        return c
    if name == "image-pull":
        p = c.pod("rbd-worker-")
        cname = p["spec"]["containers"][0]["name"]
        image = p["spec"]["containers"][0]["image"]
        cs = p["status"]["containerStatuses"][0]
        cs.update(state={"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
                  ready=False, restartCount=0, started=False, imageID="")
        cs.pop("containerID", None)
        p["status"]["phase"] = "Pending"
        _set_condition(p, "Ready", "False", now - 1800, "ContainersNotReady", f"containers with unready status: [{cname}]")
        _set_condition(p, "ContainersReady", "False", now - 1800, "ContainersNotReady", f"containers with unready status: [{cname}]")
        uid = p["metadata"]["uid"]
        fp = f"spec.containers{{{cname}}}"
        c.events += [
            event(p["metadata"]["name"], uid, "Normal", "Pulling", f'Pulling image "{image}"', now - 1800, now - 300, 9, field_path=fp),
            event(p["metadata"]["name"], uid, "Warning", "Failed",
                  f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
                  f'"{image}": failed to resolve reference "{image}": {image}: not found', now - 1800, now - 300, 9, field_path=fp),
            event(p["metadata"]["name"], uid, "Warning", "Failed", "Error: ErrImagePull", now - 1800, now - 300, 9, field_path=fp),
            event(p["metadata"]["name"], uid, "Normal", "BackOff", f'Back-off pulling image "{image}"', now - 1790, now - 15, 130, field_path=fp),
            event(p["metadata"]["name"], uid, "Warning", "Failed", "Error: ImagePullBackOff", now - 1790, now - 15, 130, field_path=fp),
        ]
        return c
    if name == "not-ready":
        p = c.pod("rbd-db-0")
        cs = p["status"]["containerStatuses"][0]
        cs["ready"] = False
        _set_condition(p, "Ready", "False", now - 3600, "ContainersNotReady", "containers with unready status: [rbd-db]")
        _set_condition(p, "ContainersReady", "False", now - 3600, "ContainersNotReady", "containers with unready status: [rbd-db]")
        c.events.append(event("rbd-db-0", p["metadata"]["uid"], "Warning", "Unhealthy",
                              "Readiness probe failed: dial tcp 10.42.0.17:3306: connect: connection refused",
                              now - 3600, now - 4, 1201, field_path="spec.containers{rbd-db}"))
        return c
    if name == "missing":
        c.pods = [p for p in c.pods if not p["metadata"]["name"].startswith("rbd-api-")]
        return c
    if name == "disk-pressure":
        since = now - 3 * 3600
        c.nodes = [node(now, now - 3 * DAY, {
            "DiskPressure": ("True", "KubeletHasDiskPressure", "kubelet has disk pressure", since)})]
        _evict(c, now, "rbd-chaos-", "The node was low on resource: ephemeral-storage. Threshold quantity: 6125549Ki, available: 3145728Ki. ")
        p = c.pod("rbd-eventlog-0")
        _make_pending(c, p, now, "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }. "
                                  "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
        return c
    if name == "memory-pressure":
        c.nodes = [node(now, now - 3 * DAY, {
            "MemoryPressure": ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", now - 600)})]
        return c
    if name == "pid-pressure":
        c.nodes = [node(now, now - 3 * DAY, {
            "PIDPressure": ("True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available", now - 600)})]
        return c
    if name == "node-not-ready":
        c.nodes = [node(now, now - 3 * DAY, {
            "Ready": ("False", "KubeletNotReady",
                      "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                      "message:Network plugin returns error: cni plugin not initialized", now - 900)})]
        return c
    if name == "three-nodes":
        return three_nodes(c, now)
    raise KeyError(name)


# A k3s cluster of three: a server and two agents (name, InternalIP, control plane, pod CIDR).
THREE_NODES = (("rbd-server-1", "10.0.0.11", True, "10.42.0.0/24"),
               ("rbd-agent-1", "10.0.0.12", False, "10.42.1.0/24"),
               ("rbd-agent-2", "10.0.0.13", False, "10.42.2.0/24"))


def _place(p: dict[str, Any], node_index: int, host_network: bool) -> None:
    name, ip, _, cidr = THREE_NODES[node_index]
    p["spec"]["nodeName"] = name
    p["status"]["hostIP"] = ip
    pod_ip = ip if host_network else cidr.rsplit(".", 1)[0] + "." + p["status"]["podIP"].rsplit(".", 1)[1]
    p["status"]["podIP"] = pod_ip
    p["status"]["podIPs"] = [{"ip": pod_ip}]


def three_nodes(c: Cluster, now: float) -> Cluster:
    """Three nodes: the server healthy, agent 1 under DiskPressure (a crash-looping rbd-api and an
    evicted rbd-hub on it), agent 2 unreachable for 15 minutes (all its conditions Unknown, as the
    node lifecycle controller sets them; its StatefulSet pod stuck Terminating, its DaemonSet pods
    marked not ready). DaemonSet pods run once per node; the others are spread over the nodes."""
    created = now - 3 * DAY
    gone = now - 900
    unknown = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", gone)
    c.nodes = [
        node(now, created, name=THREE_NODES[0][0], ip=THREE_NODES[0][1], control_plane=True, pod_cidr=THREE_NODES[0][3]),
        node(now, created + 600, {"DiskPressure": ("True", "KubeletHasDiskPressure", "kubelet has disk pressure", now - 3 * 3600)},
             name=THREE_NODES[1][0], ip=THREE_NODES[1][1], control_plane=False, pod_cidr=THREE_NODES[1][3]),
        node(now, created + 900, {t: unknown for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")},
             name=THREE_NODES[2][0], ip=THREE_NODES[2][1], control_plane=False, heartbeat=gone - 40,
             pod_cidr=THREE_NODES[2][3]),
    ]
    spread = 0
    extra: list[dict[str, Any]] = []
    for p in c.pods:
        kind = p["metadata"]["ownerReferences"][0]["kind"]
        if kind == "DaemonSet":
            _place(p, 0, True)
            for i in (1, 2):
                copy_ = copy.deepcopy(p)
                new_name = p["metadata"]["generateName"] + _digest(f"{p['metadata']['name']}-{i}".encode()).hexdigest()[:5]
                copy_["metadata"]["name"] = new_name
                copy_["metadata"]["uid"] = _uid("pod", new_name)
                _place(copy_, i, True)
                extra.append(copy_)
        else:
            _place(p, spread % 3, False)
            spread += 1
    c.pods += extra
    _place(c.pod("rbd-api-"), 1, False)
    _place(c.pod("rbd-hub-"), 1, False)
    _place(c.pod("rbd-monitor-0"), 2, False)
    _crash(c, now, "rbd-api-", "Error", 1, [
        'time="2026-11-30T08:10:06Z" level=error msg="start api server failure: dial tcp 10.43.12.7:2379: i/o timeout"',
    ])
    _evict(c, now, "rbd-hub-", "The node was low on resource: ephemeral-storage. Threshold quantity: 6125549Ki, "
                               "available: 4718592Ki. ")
    # The scheduler put the replacement where there is room: the server (agent 1 has a NoSchedule taint).
    replacement = next(p for p in c.pods if p["metadata"]["name"].startswith("rbd-hub-") and p["status"]["phase"] == "Running")
    _place(replacement, 0, False)
    for p in c.pods:
        if p["spec"].get("nodeName") != THREE_NODES[2][0]:
            continue
        # MarkPodsNotReady: the pods of an unreachable node are not ready any more.
        _set_condition(p, "Ready", "False", gone + 40)
        if p["metadata"]["ownerReferences"][0]["kind"] != "DaemonSet":
            # The NoExecute taint evicted it after 300 s; without a kubelet the deletion never ends.
            p["metadata"]["deletionTimestamp"] = ts(gone + 340)
            p["metadata"]["deletionGracePeriodSeconds"] = 30
    return c


def _make_pending(c: Cluster, p: dict[str, Any], now: float, message: str) -> None:
    name = p["metadata"]["name"]
    p["spec"].pop("nodeName", None)
    p["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                        "lastTransitionTime": ts(now - 2 * DAY - 21 * 3600), "reason": "Unschedulable", "message": message}],
        "qosClass": "BestEffort",
    }
    c.events.append(event(name, p["metadata"]["uid"], "Warning", "FailedScheduling", message,
                          now - 2 * DAY - 21 * 3600, now - 312, 832, component="default-scheduler"))


def _evict(c: Cluster, now: float, prefix: str, message: str) -> None:
    """The evicted pod stays (phase Failed, reason Evicted); its controller made a new one."""
    p = c.pod(prefix)
    name = p["metadata"]["name"]
    cname = p["spec"]["containers"][0]["name"]
    evicted = copy.deepcopy(p)
    evicted["status"] = {
        "phase": "Failed",
        "message": message,
        "reason": "Evicted",
        "hostIP": p["status"]["hostIP"],
        "startTime": p["status"]["startTime"],
        "conditions": p["status"]["conditions"],
        "containerStatuses": [{
            "name": cname,
            "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                     "message": "The container could not be located when the pod was terminated",
                                     "startedAt": None, "finishedAt": None}},
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "image": p["spec"]["containers"][0]["image"],
            "imageID": "",
            "started": False,
        }],
        "qosClass": "BestEffort",
    }
    c.events.append(event(name, p["metadata"]["uid"], "Warning", "Evicted", message, now - 7200, now - 7200, 1,
                          component="kubelet"))
    c.events.append(event(name, p["metadata"]["uid"], "Normal", "Killing", f"Stopping container {cname}",
                          now - 7200, now - 7200, 1, field_path=f"spec.containers{{{cname}}}"))
    # The replacement pod (DaemonSets and ReplicaSets recreate it under a new name).
    base = name.rsplit("-", 1)[0]
    replacement = copy.deepcopy(p)
    new_name = f"{base}-{_digest(name.encode()).hexdigest()[:5]}"
    replacement["metadata"]["name"] = new_name
    replacement["metadata"]["uid"] = _uid("pod", new_name)
    replacement["metadata"]["creationTimestamp"] = ts(now - 7100)
    replacement["status"]["startTime"] = ts(now - 7100)
    for cs in replacement["status"]["containerStatuses"]:
        cs["state"] = {"running": {"startedAt": ts(now - 7090)}}
    c.pods[c.pods.index(p)] = evicted
    c.pods.append(replacement)


SCENARIOS = ("healthy", "crashloop", "etcd-down", "oom", "pending", "evicted", "image-pull", "not-ready", "missing",
             "disk-pressure", "memory-pressure", "pid-pressure", "node-not-ready", "three-nodes")
