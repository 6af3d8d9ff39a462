"""sources/kube.py: the real `kubernetes` client against the HTTPS stand-in, faults classified."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_api import objects
from tests.kube_api.server import KubeApi, make_pki
from watchdog.sources import kube

NS = "rbd-system"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApi]:
    with KubeApi(objects.scenario("crashloop", time.time()), tmp_path / "api") as a:
        yield a


def client(api: KubeApi, timeout: float = 1.0) -> kube.KubeClient:
    return kube.KubeClient(str(api.kubeconfig), timeout)


def test_lists_pods_and_nodes_as_observations(api: KubeApi) -> None:
    """The wire dicts become PodObs / NodeObs; container states and last terminations decoded."""
    c = client(api)
    pods = c.list_pods(NS, time.monotonic() + 5)
    nodes = c.list_nodes(time.monotonic() + 5)
    assert len(pods) == 16 and c.requests == 2
    crashing = next(p for p in pods if p.name.startswith("rbd-api-"))
    (ctr,) = crashing.containers
    assert (ctr.state, ctr.reason, ctr.last_reason, ctr.last_exit_code, ctr.restarts) == (
        "waiting", "CrashLoopBackOff", "Error", 1, 17)
    assert crashing.condition("Ready") is not None and crashing.condition("Ready").status == "False"  # type: ignore[union-attr]
    db = next(p for p in pods if p.name == "rbd-db-0")
    assert len(db.containers) == 2 and all(x.ready for x in db.containers)
    assert nodes[0].name == objects.NODE and nodes[0].condition("Ready").status == "True"  # type: ignore[union-attr]


def test_events_and_previous_log_of_one_pod(api: KubeApi) -> None:
    """Events by involvedObject.name; the previous container's log tail."""
    name = api.cluster.pod("rbd-api-")["metadata"]["name"]
    c = client(api)
    events = c.pod_events(NS, name, time.monotonic() + 5)
    assert [(e.reason, e.count) for e in events] == [("BackOff", 246)]
    lines = c.previous_log(NS, name, "rbd-api", 3, time.monotonic() + 5)
    assert len(lines) == 3 and "i/o timeout" in lines[-1]
    assert any(f"involvedObject.name%3D{name}" in r or f"involvedObject.name={name}" in r for r in api.requests)
    assert any("previous=true" in r and "tailLines=3" in r for r in api.requests)


def test_missing_previous_log_is_a_detail_failure(api: KubeApi) -> None:
    """A 400 for a pod with no previous container fails that detail only."""
    with pytest.raises(kube.DetailUnavailable):
        client(api).previous_log(NS, "rbd-etcd-0", "rbd-etcd", 5, time.monotonic() + 5)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "server error"),
        ("garbage", "not json"),
        ("close", "connection closed"),
        ("wrong-token", "credentials"),
        ("forbidden", "credentials"),
        ("hang", "timeout"),
        ("drip", "timeout"),
    ],
)
def test_faults_are_classified_within_the_timeout(api: KubeApi, fault: str, reason: str) -> None:
    """Each fault mode maps to its reason, and no call outlives the timeout or the poll's deadline."""
    api.set_fault(fault)
    c = client(api, timeout=1.0)
    c.prepare()
    started = time.monotonic()
    with pytest.raises(kube.ApiUnavailable) as e:
        c.list_pods(NS, time.monotonic() + 2.0)  # the poll's deadline bounds even a dripping answer
    assert e.value.reason == reason
    assert time.monotonic() - started < 3.0


def test_connection_refused(tmp_path: Path) -> None:
    """Nobody listening on the kubeconfig's port: connection refused."""
    api = KubeApi(objects.healthy(time.time()), tmp_path).start()
    api.stop()
    with pytest.raises(kube.ApiUnavailable) as e:
        client(api).list_pods(NS, time.monotonic() + 5)
    assert e.value.reason == "connection refused"


def test_tls_with_the_wrong_ca_is_a_tls_failure(api: KubeApi) -> None:
    """A kubeconfig whose CA did not sign the server's certificate: tls."""
    api.write_kubeconfig(ca_pem=make_pki("other").ca_pem)
    with pytest.raises(kube.ApiUnavailable) as e:
        client(api).list_pods(NS, time.monotonic() + 5)
    assert e.value.reason == "tls"


def test_a_broken_kubeconfig_is_named(tmp_path: Path) -> None:
    """A kubeconfig that cannot be used is reported, not raised as a traceback."""
    bad = tmp_path / "k3s.yaml"
    bad.write_text("apiVersion: v1\nclusters: []\ncontexts: []\ncurrent-context: nope\nusers: []\n")
    with pytest.raises(kube.ApiUnavailable) as e:
        kube.KubeClient(str(bad), 1.0).list_pods(NS, time.monotonic() + 5)
    assert e.value.reason == "kubeconfig"


def test_no_time_left_means_no_request(api: KubeApi) -> None:
    """A poll past its deadline does not start another request."""
    c = client(api)
    with pytest.raises(kube.ApiUnavailable) as e:
        c.list_nodes(time.monotonic() - 1)
    assert e.value.reason == "timeout" and c.requests == 0


def test_kubeconfig_lookup_order(tmp_path: Path) -> None:
    """The configured file first, then $KUBECONFIG entries that exist."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    b.write_text("x")
    env = {"KUBECONFIG": f"{tmp_path / 'none.yaml'}:{b}"}
    assert kube.find_kubeconfig(str(a), env) == str(b)
    a.write_text("x")
    assert kube.find_kubeconfig(str(a), env) == str(a)
    assert kube.find_kubeconfig(str(tmp_path / "none.yaml"), {}) is None


def test_client_notices_a_rewritten_kubeconfig(api: KubeApi) -> None:
    """k3s rewrites its kubeconfig on restart: the client says it is stale."""
    c = client(api)
    assert not c.stale()
    api.write_kubeconfig(token="another-token-value")
    assert c.stale()


def test_events_with_series_and_event_time() -> None:
    """Events from newer components carry series/eventTime instead of count/timestamps."""
    e = kube.event_from_dict({
        "type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes are available",
        "reportingComponent": "default-scheduler", "eventTime": "2026-11-30T08:00:00.000000Z",
        "series": {"count": 12, "lastObservedTime": "2026-11-30T09:00:00.000000Z"},
        "firstTimestamp": None, "lastTimestamp": None, "count": None,
    })
    assert (e.count, e.source) == (12, "default-scheduler")
    assert e.last is not None and e.first is not None and e.last - e.first == 3600


def test_the_listener_does_not_import_the_client_at_start() -> None:
    """`kubernetes` is imported lazily (in the poll thread), so `listen` reaches READY fast."""
    import subprocess
    import sys

    code = "import sys, watchdog.cli, watchdog.app; print('kubernetes' in sys.modules, 'urllib3' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_only_kube_py_imports_the_client_and_its_transport() -> None:
    """`kubernetes` and its `urllib3` are imported in sources/kube.py only."""
    import ast
    from pathlib import Path

    package = Path(kube.__file__).resolve().parents[1]
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("kubernetes", "urllib3") for n in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"sources/kube.py"}
