"""The API stand-in speaks the apiserver's wire format (checked with plain HTTPS, not the client)."""
from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import reaped, wait_for_file
from tests.kube_api import objects
from tests.kube_api.server import KubeApi

NS = "/api/v1/namespaces/rbd-system"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    with KubeApi(objects.scenario("crashloop", time.time()), tmp_path_factory.mktemp("api")) as a:
        yield a


def get(api: KubeApi, path: str, token: str | None = "", ca: bytes | None = None) -> tuple[int, str, Any]:
    ctx = ssl.create_default_context(cadata=(ca or api.pki.ca_pem).decode())
    req = urllib.request.Request(api.url + path)  # noqa: S310 - an https URL we built
    if token is not None:
        req.add_header("Authorization", f"Bearer {token or api.token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310 - an https URL we built
            body = resp.read().decode()
            ctype = resp.headers["Content-Type"]
            code = resp.status
    except urllib.error.HTTPError as e:
        body, ctype, code = e.read().decode(), e.headers["Content-Type"], e.code
    return code, ctype, json.loads(body) if ctype == "application/json" else body


def test_pod_list_has_kind_api_version_and_resource_version(api: KubeApi) -> None:
    """A PodList carries kind, apiVersion, metadata.resourceVersion and the seed's pods."""
    code, _, doc = get(api, f"{NS}/pods")
    assert code == 200 and doc["kind"] == "PodList" and doc["apiVersion"] == "v1"
    assert doc["metadata"]["resourceVersion"].isdigit()
    names = {p["metadata"]["name"] for p in doc["items"]}
    assert "rbd-etcd-0" in names and len(names) == 16
    pod = doc["items"][0]
    assert pod["status"]["containerStatuses"][0]["state"].keys() <= {"running", "waiting", "terminated"}


def test_without_token_the_answer_is_a_401_status(api: KubeApi) -> None:
    """No bearer token: 401 with a Status body, as kube-apiserver answers."""
    code, _, doc = get(api, f"{NS}/pods", token=None)
    assert code == 401 and doc["kind"] == "Status" and doc["reason"] == "Unauthorized"


def test_unknown_path_is_a_404_status(api: KubeApi) -> None:
    """An unknown path answers 404 with a Status body."""
    code, _, doc = get(api, "/apis/apps/v1/namespaces/rbd-system/deployments")
    assert code == 404 and doc["kind"] == "Status" and doc["code"] == 404


def test_field_and_label_selectors_filter(api: KubeApi) -> None:
    """fieldSelector=involvedObject.name=... picks a pod's events; labelSelector picks pods."""
    pod = api.cluster.pod("rbd-api-")["metadata"]["name"]
    _, _, events = get(api, f"{NS}/events?fieldSelector=involvedObject.name%3D{pod}")
    assert events["kind"] == "EventList" and events["items"]
    assert all(e["involvedObject"]["name"] == pod for e in events["items"])
    _, _, none = get(api, f"{NS}/events?fieldSelector=involvedObject.name%3Drbd-etcd-0")
    assert none["items"] == []
    _, _, pods = get(api, f"{NS}/pods?labelSelector=name%3Drbd-etcd")
    assert [p["metadata"]["name"] for p in pods["items"]] == ["rbd-etcd-0"]
    _, _, nodes = get(api, "/api/v1/nodes")
    assert nodes["kind"] == "NodeList" and nodes["items"][0]["status"]["conditions"]


def test_previous_log_honours_container_and_tail_lines(api: KubeApi) -> None:
    """pods/{name}/log?previous=true&tailLines=2 gives the previous container's last lines as text."""
    pod = api.cluster.pod("rbd-api-")["metadata"]["name"]
    code, ctype, text = get(api, f"{NS}/pods/{pod}/log?container=rbd-api&previous=true&tailLines=2")
    assert code == 200 and ctype == "text/plain"
    assert text.splitlines()[-1].endswith('i/o timeout"') and len(text.splitlines()) == 2
    code, _, doc = get(api, f"{NS}/pods/rbd-etcd-0/log?previous=true")
    assert code == 400 and "previous terminated container" in doc["message"]
    code, _, doc = get(api, f"{NS}/pods/rbd-db-0/log")
    assert code == 400 and "container name must be specified" in doc["message"]


def test_tls_with_another_ca_fails(api: KubeApi) -> None:
    """The certificate is signed by the generated CA only."""
    from tests.kube_api.server import make_pki

    with pytest.raises(urllib.error.URLError):
        get(api, f"{NS}/pods", ca=make_pki("another-ca").ca_pem)


@pytest.mark.integration
def test_runs_as_a_process_writing_kubeconfig_and_port(tmp_path: Path) -> None:
    """`python -m tests.kube_api.server --dir D --scenario S` writes D/kubeconfig.yaml and D/port, stops on SIGTERM."""
    root = Path(__file__).resolve().parents[2]
    with reaped() as r:
        p = r.spawn([sys.executable, "-m", "tests.kube_api.server", "--dir", str(tmp_path), "--scenario", "missing"],
                    cwd=root, stderr=subprocess.DEVNULL)
        port = int(wait_for_file(tmp_path / "port", timeout=30).read_text())
        text = (tmp_path / "kubeconfig.yaml").read_text()
        assert f"server: https://127.0.0.1:{port}" in text and "certificate-authority-data:" in text
        token = (tmp_path / "token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        req = urllib.request.Request(f"https://127.0.0.1:{port}{NS}/pods", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310 - an https URL we built
            names = [i["metadata"]["name"] for i in json.loads(resp.read())["items"]]
        assert len(names) == 15 and not any(n.startswith("rbd-api-") for n in names)
        p.terminate()
        assert p.wait(timeout=10) == 0
