"""A plain (non-editable) install gives a working command with conf/ inside the install."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.integration.supervisor_env import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_wheel_install_works_from_any_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(REPO)], check=True, timeout=300, cwd=tmp_path)
    (wheel,) = wheels.glob("rainbond_watchdog-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies come from the test environment; its .pth files (an editable install) are not processed.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([str(py), "-c", "import watchdog.config as c; print(c.packaged_conf_dir())"],
                         capture_output=True, text=True, check=True, cwd=elsewhere).stdout.strip()
    assert out.startswith(str(venv)), out
    assert (Path(out) / "rules.toml").is_file() and (Path(out) / "supervisord-watchdog.conf").is_file()
    cmd = venv / "bin" / "rainbond-watchdog"
    missing = subprocess.run([str(cmd), "status", "--file", str(tmp_path / "none.json")],
                             capture_output=True, text=True, cwd=elsewhere, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    # A first event through the installed listener: READY, OK, exit 0 at end of input.
    listen = subprocess.run([str(cmd), "listen"], input="ver:3.0 server:supervisor serial:1 pool:w poolserial:1 "
                            "eventname:TICK_5 len:6\nwhen:1", capture_output=True, text=True, cwd=elsewhere,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "RAINBOND_WATCHDOG_CONFIG": _config(tmp_path)})
    assert listen.returncode == 0, listen.stderr
    assert listen.stdout == "READY\nRESULT 2\nOKREADY\n"
    assert json.loads(listen.stderr.splitlines()[0])["event"] == "listener_started"


def _config(tmp_path: Path) -> str:
    conf = tmp_path / "w.toml"
    conf.write_text(f'status_file = "{tmp_path / "s" / "d.json"}"\nlog_dir = "{tmp_path}"\nalert_format = "json"\n')
    return str(conf)
