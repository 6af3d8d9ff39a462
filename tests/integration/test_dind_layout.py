"""The image's own supervisord layout (``dind.conf``), under supervisor 3.3.1 and 4.

As in the v5.10–v5.13 images: ``init_rainbond`` autostarts with its stdout on supervisord's own
(``docker logs``) and starts ``containerd`` then ``k3s`` through ``supervisorctl``; ``console``
waits; ``cloudadaptor`` and ``log`` run beside them and are none of the watchdog's business. No
program sets ``startretries``/``startsecs``; logs rotate at 10 MB with 3 backups. The baked
image's extra ``conf.d`` file repeats ``[program:init_rainbond]`` with only
``stdout_events_enabled=true``, and supervisord merges it into the section of ``dind.conf``.
The loglevel is debug, not the image's error: the test reads supervisord's complaints.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import reaped, wait_for
from tests.integration.supervisor_env import GENERATIONS, REPO, Supervisor

RECORDER = Path(__file__).with_name("recorder.py")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROTATION = "stdout_logfile_maxbytes=10MB\nstdout_logfile_backups=3\n"


def dind_conf(sup: Supervisor, generation: int) -> str:
    """dind.conf's program sections, with the stand-ins for the image's binaries."""
    py, logs = sys.executable, sup.logs
    sock = sup.root / "containerd" / "containerd.sock"
    sock.parent.mkdir(exist_ok=True)
    adaptor = sup.root / "cloudadaptor.py"
    adaptor.write_text("import time\nwhile True:\n    print('cloudadaptor: sync done', flush=True)\n    time.sleep(0.2)\n")
    user = "user=root\n" if os.geteuid() == 0 else ""
    common = f"{user}directory={REPO}\nstopasgroup=true\nkillasgroup=true\n"
    sections = {
        "init_rainbond": (f"command={py} -m tests.allinone.init --conf {sup.conf} --containerd-socket {sock} "
                          f"--timeout 40 --supervisor {generation}\nautostart=true\nautorestart=false\n"
                          "stdout_logfile=/dev/fd/1\nstdout_logfile_maxbytes=0\nredirect_stderr=true\n"),
        "containerd": (f"command={py} -m tests.allinone.fake_containerd --address {sock}\nautostart=false\n"
                       f"stdout_logfile={logs / 'containerd.log'}\nredirect_stderr=true\n{ROTATION}"),
        "k3s": (f"command={py} -m tests.allinone.fake_k3s --scenario cgroupv2\nautostart=false\n"
                f"stdout_logfile={logs / 'k3s.log'}\nredirect_stderr=true\n{ROTATION}"),
        "console": (f"command={py} -m tests.allinone.fake_console --port 1\nautostart=false\npriority=20\n"
                    f"stdout_logfile={logs / 'console.log'}\nstderr_logfile={logs / 'console_error.log'}\n{ROTATION}"),
        "cloudadaptor": (f"command={py} {adaptor}\nautostart=true\npriority=20\n"
                         f"stdout_logfile={logs / 'cloudadaptor.log'}\n"
                         f"stderr_logfile={logs / 'cloudadaptor_error.log'}\n{ROTATION}"),
        # /usr/bin/log of the image is not ours to judge: here it dies at once, over and over.
        "log": f"command={py} -c \"raise SystemExit(3)\"\nautostart=true\n",
    }
    return "".join(f"[program:{name}]\n{common}{body}\n" for name, body in sections.items())


def _status(sup: Supervisor) -> dict[str, Any]:
    try:
        return dict(json.loads(sup.status_file.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _events(text: str, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and f'"{name}"' in line]


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: f"supervisor{g}")
def test_dind_conf_layout_boot_with_a_failing_k3s(tmp_path: Path, generation: int) -> None:
    """init_rainbond drives the boot; k3s dies on cgroup v2 after the default 3 retries and is diagnosed."""
    confd = tmp_path / "conf.d"
    confd.mkdir()
    with reaped() as reaper:
        record = tmp_path / "recorded.jsonl"
        # A probe beside the watchdog: records the PROCESS_LOG envelopes exactly as sent.
        probe = (f"\n[eventlistener:recorder]\ncommand={sys.executable} {RECORDER} {record}\nevents=PROCESS_LOG\n"
                 "buffer_size=1000\nstdout_logfile=NONE\nstderr_logfile=NONE\npriority=1\n")
        sup = Supervisor(tmp_path, reaper, [], {"resolve_after_seconds": 2.0}, generation,
                         extra_sections=probe, include=(f"{confd}/*.conf",))
        (confd / "dind.conf").write_text(dind_conf(sup, generation))
        # What the baked image adds: only this key, merged into dind.conf's section.
        (confd / "watchdog-init-events.conf").write_text("[program:init_rainbond]\nstdout_events_enabled=true\n")
        try:
            sup.start()
            wait_for(lambda: sup.state("k3s") == "FATAL", 60, what="k3s FATAL after its default retries")
            wait_for(lambda: any(p["id"] == "k3s.cgroupv2-unsupported" for p in _status(sup).get("problems", [])),
                     20, what="k3s.cgroupv2-unsupported in the status file")
            wait_for(lambda: "K3s failed to start" in sup.listener_stderr(), 60, what="the init script's ERROR line")
            wait_for(lambda: _status(sup).get("components", {}).get("k3s", {}).get("state") == "FATAL", 20,
                     what="k3s FATAL in the status file")
            doc = _status(sup)
            states = {name: sup.state(name) for name in ("containerd", "console", "log", "cloudadaptor")}
            info = sup.rpc.process_info("k3s")
        finally:
            sup.stop()
    out = sup.listener_stderr()  # supervisord's stdout and stderr: the container log
    log = sup.supervisord_log()

    # supervisord ran the layout as the image does.
    assert states == {"containerd": "RUNNING", "console": "STOPPED", "log": "FATAL", "cloudadaptor": "RUNNING"}
    assert info is not None and info.state == "FATAL"
    assert log.count("spawned: 'k3s'") == 4, "startretries defaults to 3: one start and three retries"
    assert "INFO: Containerd is starting, please wait ····" in out  # init_rainbond's stdout is the container log

    # The watchdog's diagnosis, and only about its own programs.
    assert doc["phase"] == "k3s" and doc["overall"] == "failed"
    assert doc["components"]["containerd"]["state"] == "RUNNING"
    assert doc["components"]["console"]["state"] == "STOPPED"
    subjects = {p["subject"] for p in doc["problems"] + doc.get("resolved", [])}
    assert not subjects & {"log", "cloudadaptor"}, subjects
    assert not set(doc["components"]) & {"log", "cloudadaptor"}

    # The protocol held under this generation's framing: init_rainbond's ···· lines were events.
    assert [e["unit"] for e in _events(out, "supervisor_len_unit")] == ["bytes" if generation == 3 else "characters"]
    assert not _events(out, "protocol_resync") and not _events(out, "protocol_error")
    assert not _events(out, "event_handling_failed")
    assert "bad result" not in log.lower() and "entered UNKNOWN state" not in log
    assert "watchdog event buffer overflowed" not in log

    # The one-key conf.d file merged: init_rainbond's output became PROCESS_LOG events.
    recorded = [json.loads(x) for x in record.read_text().splitlines()]
    init = [bytes.fromhex(r["payload"]) for r in recorded if b"processname:init_rainbond" in bytes.fromhex(r["payload"])]
    assert any("Containerd is starting, please wait ····".encode() in p for p in init)
    assert any(b"ERROR: K3s failed to start" in p for p in init)
