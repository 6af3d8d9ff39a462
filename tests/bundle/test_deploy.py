"""deploy/Dockerfile.allinone without Docker: its drop-ins under the image's real supervisord
parsers (3.3.1 on Python 2.7, as Debian stretch installs it, and 4.x), and its COPY sources."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import supervisor3
from tests.bundle.building import REPO
from tests.helpers import dockerfile_instructions

pytestmark = [pytest.mark.slow, pytest.mark.integration]
DOCKERFILE = REPO / "deploy" / "Dockerfile.allinone"
DUMP = Path(__file__).with_name("supervisor_config_dump.py")

# Debian stretch's /etc/supervisor/supervisord.conf as the image has it (paths moved into a folder).
SUPERVISORD_CONF = """\
[unix_http_server]
file={etc}/supervisor.sock
chmod=0700

[supervisord]
logfile={logs}/supervisord.log
pidfile={etc}/supervisord.pid
childlogdir={logs}
loglevel=error

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{etc}/supervisor.sock

[include]
files = {etc}/conf.d/*.conf
"""

# dind.conf of a v5.10–v5.13 image (goodrain/rainbond-console, dind.conf), /app/logs moved.
DIND_CONF = """\
[program:init_rainbond]
command=/bin/bash /app/ui/entrypoint-dind.sh
user=root
autostart=true
autorestart=false
startsecs=0
redirect_stderr=true
stdout_logfile=/dev/fd/1
stdout_logfile_maxbytes=0

[program:containerd]
command=containerd --root /app/data/containerd
user=root
autostart=false
autorestart=true
redirect_stderr=true
stdout_logfile={logs}/containerd.log
stdout_logfile_maxbytes=10mb
stdout_logfile_backups=3

[program:k3s]
command=k3s server --disable traefik --node-name node --data-dir /app/data/k3s --container-runtime-endpoint /run/containerd/containerd.sock
user=root
autostart=false
autorestart=true
redirect_stderr=true
stdout_logfile={logs}/k3s.log
stdout_logfile_maxbytes=10mb
stdout_logfile_backups=3

[program:console]
command=/app/ui/entrypoint.sh
user=root
autostart=false
autorestart=true
priority=20
stdout_logfile={logs}/console.log
stdout_logfile_maxbytes=10mb
stdout_logfile_backups=3
stderr_logfile={logs}/console_error.log
stderr_logfile_maxbytes=10mb
stderr_logfile_backups=3
"""


def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE)


def copies() -> list[tuple[str | None, list[str], str]]:
    """(--from stage or None, sources, destination) of every COPY."""
    out = []
    for word, rest in instructions():
        if word == "COPY":
            args = rest.split()
            stage = next((a.split("=", 1)[1] for a in args if a.startswith("--from=")), None)
            paths = [a for a in args if not a.startswith("--")]
            out.append((stage, paths[:-1], paths[-1]))
    return out


def image_etc(tmp_path: Path) -> Path:
    """/etc/supervisor of the baked image: the stock conf, dind.conf, and the Dockerfile's drop-ins."""
    etc = tmp_path / "etc-supervisor"
    logs = tmp_path / "logs"
    (etc / "conf.d").mkdir(parents=True)
    logs.mkdir()
    (etc / "supervisord.conf").write_text(SUPERVISORD_CONF.format(etc=etc, logs=logs))
    (etc / "conf.d" / "dind.conf").write_text(DIND_CONF.format(logs=logs))
    dropped = 0
    for stage, sources, dest in copies():
        if stage is None and dest.startswith("/etc/supervisor/conf.d/"):
            (source,) = sources
            shutil.copy(REPO / source, etc / "conf.d" / Path(dest).name)
            dropped += 1
    assert dropped == 2, "the Dockerfile should drop the listener and the init_rainbond events into conf.d"
    return etc


def parsed(argv_prefix: list[str], conf: Path) -> tuple[str, dict[str, Any]]:
    """(supervisor's version, its process groups) as that supervisor's own parser reads ``conf``."""
    done = subprocess.run([*argv_prefix, str(DUMP), str(conf)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    return doc["version"], doc["groups"]


def python27_with_supervisor3() -> list[str]:
    try:
        python, target = supervisor3.ensure_installed()
    except supervisor3.Supervisor3Unavailable as e:
        pytest.skip(str(e))
    return [python, "-c", f"import site, sys; site.addsitedir({str(target)!r}); sys.argv = sys.argv[1:]; "
                          f"exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))"]


@pytest.mark.parametrize("generation", ["3.3.1 on Python 2.7", "4.x on Python 3"])
def test_drop_ins_merge_into_dind_conf_under_both_supervisors(generation: str, tmp_path: Path) -> None:
    """The listener section exists; init_rainbond gets stdout_events_enabled and keeps its keys."""
    prefix = python27_with_supervisor3() if generation.startswith("3.3.1") else [sys.executable]
    version, groups = parsed(prefix, image_etc(tmp_path) / "supervisord.conf")
    assert version == "3.3.1" if generation.startswith("3.3.1") else version.startswith("4.")
    init = groups["init_rainbond"]["processes"]["init_rainbond"]
    assert init["stdout_events_enabled"] is True
    assert init["command"] == "/bin/bash /app/ui/entrypoint-dind.sh"
    assert init["autostart"] is True and init["redirect_stderr"] is True
    assert init["stdout_logfile"] == "/dev/fd/1"
    dog = groups["watchdog"]
    assert dog["kind"] == "EventListenerPoolConfig"
    assert set(dog["events"]) >= {"ProcessStateEvent", "ProcessLogEvent", "Tick5Event", "Tick60Event"}
    assert dog["buffer_size"] == 100
    assert dog["processes"]["watchdog"]["command"].split()[0].endswith("rainbond-watchdog")
    assert dog["processes"]["watchdog"]["priority"] < init["priority"]
    # The other programs are untouched and still do not send their output as events.
    assert set(groups) == {"init_rainbond", "containerd", "k3s", "console", "watchdog"}
    assert groups["k3s"]["processes"]["k3s"]["stdout_events_enabled"] is False


def test_without_the_drop_in_init_rainbond_sends_no_events(tmp_path: Path) -> None:
    """The control: the merge above is the drop-in's doing, not the parser's default."""
    etc = image_etc(tmp_path)
    (etc / "conf.d" / "init_rainbond-events.conf").unlink()
    _, groups = parsed([sys.executable], etc / "supervisord.conf")
    assert groups["init_rainbond"]["processes"]["init_rainbond"]["stdout_events_enabled"] is False


def test_dockerfile_builds_the_bundle_and_bakes_it_into_the_upstream_image() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "VERSION=v5.17.3")
    froms = [rest for word, rest in steps if word == "FROM"]
    assert froms[0].endswith(" AS bundle")
    assert froms[-1] == "registry.cn-hangzhou.aliyuncs.com/goodrain/rainbond:${VERSION}-dind-allinone"
    runs = [rest for word, rest in steps if word == "RUN"]
    assert any("packaging/build.sh" in r for r in runs)
    # The build stage installs what .ci/run installs for the bundle (Debian's Python 3.11, binutils).
    ci = re.search(r"APT_PACKAGES=\(([^)]*)\)", (REPO / ".ci" / "run").read_text())
    assert ci is not None
    for package in set(ci.group(1).split()) - {"containerd"}:
        assert re.search(rf"apt-get install [^&]*(?<![\w.-]){re.escape(package)}(?![\w.-])", runs[0]), package
    assert any("ln -sf /usr/local/lib/rainbond-watchdog/rainbond-watchdog /usr/local/bin/rainbond-watchdog" in r
               and "mkdir -p /app/status" in r for r in runs)
    health = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert len(health) == 1 and health[0].endswith('CMD ["/usr/local/bin/rainbond-watchdog", "check"]')
    # Every file a COPY names from the build context exists; the bundle comes from the build stage.
    for stage, sources, dest in copies():
        if stage is None:
            for source in sources:
                assert (REPO / source.rstrip("/")).exists(), f"COPY {source} {dest}: no such file"
        else:
            assert stage == "bundle" and sources == ["/src/dist/rainbond-watchdog.d"]
    # ...and everything the build stage's packaging/build.sh reads is copied in before it runs.
    copied = {s.rstrip("/") for stage, sources, _ in copies() if stage is None for s in sources}
    assert {"setup.cfg", "pyproject.toml", "README.md", "watchdog", "conf", "packaging"} <= copied
