"""The bundle against the outside world: the HTTPS API stand-in through the real Kubernetes client,
and a real supervisord running the chrooted bundle as its ``[eventlistener:watchdog]``."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import supervisor3
from tests.allinone.fake_k3s import FAILURES, START, stamp
from tests.bundle.emptyroot import EmptyRoot, clean_env, entries
from tests.helpers import reaped, wait_for
from tests.kube_api.harness import running_api
from tests.kube_api.objects import NAMESPACE

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.integration]


def test_diagnose_polls_the_api_through_the_packaged_kubernetes_client(root: EmptyRoot, tmp_path: Path) -> None:
    """The lazily imported client modules are inside: the pods are listed, a crash loop is found
    with the previous container's log, and ``--write`` writes the status file."""
    with running_api(tmp_path / "api", "crashloop") as api:
        # Where the image keeps them: the config's default kubeconfig path, and the CA beside it.
        kubeconfig = root.inside("/etc/rancher/k3s/k3s.yaml")
        kubeconfig.parent.mkdir(parents=True)
        shutil.copy(api.kubeconfig, kubeconfig)
        shutil.copy(api.directory / "ca.crt", kubeconfig.parent / "ca.crt")
        got = root.run("diagnose", "--json", "--write", env=clean_env(SUPERVISOR_SERVER_URL="unix:///none.sock"))
        pods_served = len(api.cluster.pods)
        listed = [r for r in api.requests if f"/namespaces/{NAMESPACE}/pods" in r]
    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stderr and "ModuleNotFoundError" not in got.stderr
    doc = json.loads(got.stdout)
    region = doc["components"]["region"]
    assert region["api"] == "ok"
    assert region["pods_total"] == pods_served > 0
    assert listed, "the bundle never asked the stand-in for the pods"
    crash = [p for p in doc["problems"] if p["id"] == "region.pod-crashloop"]
    assert crash and any("etcd" in line for line in crash[0]["evidence"])
    written = json.loads(root.inside("/app/status/diagnosis.json").read_text())
    assert [p["id"] for p in written["problems"]] == [p["id"] for p in doc["problems"]]


SUPERVISORD_CONF = """\
[unix_http_server]
file={root}/supervisor.sock

[supervisord]
nodaemon=true
logfile={root}/supervisord.log
logfile_maxbytes=0
loglevel=info
pidfile={root}/supervisord.pid
childlogdir={root}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[eventlistener:watchdog]
command={command}
events=PROCESS_STATE,PROCESS_LOG,TICK_5,TICK_60
buffer_size=100
priority=1
autostart=true
autorestart=true
startsecs=1
stopasgroup=true
killasgroup=true
stdout_logfile=NONE
stderr_logfile={root}/watchdog.stderr
stderr_logfile_maxbytes=0

[program:k3s]
command={python} -c {script}
autostart=true
autorestart=true
startsecs=1
startretries=1
redirect_stderr=true
stdout_logfile={logs}/k3s.log
stdout_logfile_maxbytes=0
"""


@pytest.mark.parametrize("generation", ["4.x", "3.3.1"])
def test_listen_as_the_real_supervisords_event_listener(generation: str, root: EmptyRoot, tmp_path: Path) -> None:
    """supervisord runs ``chroot ROOT BUNDLE listen``; a k3s that dies on cgroup v2 is diagnosed.

    4.x from the venv (``len`` in characters) and the image's own 3.3.1 on Python 2.7 (in bytes)."""
    if generation == "3.3.1":
        try:
            supervisord = supervisor3.supervisord_command()
        except supervisor3.Supervisor3Unavailable as e:
            pytest.skip(str(e))
    else:
        supervisord = [str(Path(sys.executable).parent / "supervisord")]
    lines = [stamp(line) for line in START + FAILURES["cgroupv2"]]
    script = f"import sys, time; sys.stdout.write({''.join(line + chr(10) for line in lines)!r}); sys.stdout.flush(); sys.exit(1)"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(SUPERVISORD_CONF.format(
        root=tmp_path, command=" ".join(root.argv("listen")), python=sys.executable,
        script=json.dumps(script), logs=root.inside("/app/logs")))
    status = root.inside("/app/status/diagnosis.json")

    def diagnosed() -> dict[str, object] | None:
        if not status.exists():
            return None
        doc = json.loads(status.read_text())
        return doc if "k3s.cgroupv2-unsupported" in {p["id"] for p in doc["problems"]} else None

    with reaped() as reaper:
        reaper.spawn([*supervisord, "-c", str(conf)], stdout=(tmp_path / "out").open("wb"),
                     stderr=(tmp_path / "err").open("wb"), env=clean_env())
        doc = wait_for(diagnosed, 60, interval=0.2, what="the bundle's diagnosis of k3s")
        time.sleep(1)  # a few more events, to see the listener stay RUNNING
        log = (tmp_path / "supervisord.log").read_text()
    # supervisord stopped (SIGTERM, stopasgroup): the listener's unpacked folders went with it.
    assert wait_for(lambda: not [e for e in entries(root.path) if e.startswith("tmp/")], 30,
                    what="an empty /tmp in the root")
    assert doc["components"]["k3s"]["state"] in ("BACKOFF", "FATAL", "EXITED")  # type: ignore[index]
    assert "success: watchdog entered RUNNING state" in log
    # Nothing but protocol tokens on stdout: supervisord never saw a bad result from the listener.
    assert "BUSY" not in log and "UNKNOWN" not in log and "bad result" not in log.lower(), textwrap.shorten(log, 2000)
    stderr = (tmp_path / "watchdog.stderr").read_text()
    # What `docker logs` shows (text alerts, the default): the raised problem, no traceback.
    assert "ERROR: [watchdog] k3s.cgroupv2-unsupported (k3s)" in stderr and "Traceback" not in stderr
