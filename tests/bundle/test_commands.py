"""The bundle runs every command in an empty root: no C library, no Python, no /etc around it.

Each test runs both builds (``onefile``: PyInstaller --onefile made static by staticx;
``onedir``: the same unpacked, carrying its own C library) and compares what they print with
what the source tree's own ``python -m watchdog`` prints for the same input.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.allinone.fake_k3s import FAILURES, START, stamp
from tests.bundle.building import ONEDIR_PREFIX, REPO, Bundle
from tests.bundle.emptyroot import CHROOT, ONEDIR_AT, EmptyRoot, clean_env, empty_root
from tests.helpers import frame, state_frame

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.integration]


def venv_watchdog(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """The same command from the source tree (the reference the bundle must match)."""
    return subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True, text=True, timeout=120,
                          cwd=str(REPO), **kw)  # type: ignore[call-overload]


def k3s_log(path: Path, failure: str = "cgroupv2") -> None:
    path.write_text("".join(stamp(line) + "\n" for line in START + FAILURES[failure]))


def test_ldd_says_the_one_file_is_not_a_dynamic_executable(bundle: Bundle) -> None:
    """Nothing is needed from the target's C library: ldd finds no dynamic section."""
    out = subprocess.run(["ldd", str(bundle.onefile)], capture_output=True, text=True)
    assert "not a dynamic executable" in out.stdout + out.stderr
    assert os.access(bundle.onefile, os.X_OK)


def test_the_onedir_build_resolves_every_library_inside_itself(bundle: Bundle) -> None:
    """Every ELF file of the folder finds its libraries in the folder (glibc and its loader included)."""
    lib = bundle.onedir / "_internal"
    assert (lib / "libc.so.6").is_file() and (lib / "ld-linux-x86-64.so.2").is_file()
    interp = subprocess.run(["readelf", "-l", str(bundle.onedir / "rainbond-watchdog")], capture_output=True, text=True)
    assert "/usr/local/lib/rainbond-watchdog/_internal/ld-linux-x86-64.so.2" in interp.stdout


def test_rules_lists_the_same_rules_as_the_source_tree(root: EmptyRoot) -> None:
    got = root.run("rules")
    assert got.returncode == 0, got.stderr
    want = venv_watchdog("rules")
    assert _without_sources(got.stdout) == _without_sources(want.stdout)
    assert "k3s.cgroupv2-unsupported" in got.stdout
    # The rule files are the ones packaged inside the bundle (unpacked or not), not the tree's.
    sources = _sources(got.stdout)
    assert [Path(s).name for s in sources] == [Path(s).name for s in _sources(want.stdout)]
    assert "rules.toml" in [Path(s).name for s in sources]
    assert not any(s.startswith(str(REPO)) for s in sources)


def _sources(text: str) -> list[str]:
    """The rule files `rules` names (its `< PATH` lines)."""
    return [line.split("< ", 1)[1] for line in text.splitlines() if line.lstrip().startswith("< ")]


def _without_sources(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("< ")]


def test_rules_check_refuses_a_bad_rule_file_in_one_sentence(root: EmptyRoot) -> None:
    root.inside("/app/bad.toml").write_text('[[rules]]\nid = "x"\npatterns = ["(unclosed"]\n')
    got = root.run("rules", "--check", "/app/bad.toml")
    assert got.returncode == 2
    assert "/app/bad.toml" in got.stderr and "Traceback" not in got.stderr


def test_explain_on_a_k3s_log_finds_what_the_source_tree_finds(root: EmptyRoot) -> None:
    k3s_log(root.inside("/app/logs/k3s.log"))
    got = root.run("explain", "--json", "/app/logs/k3s.log")
    assert got.returncode == 1, got.stderr
    want = venv_watchdog("explain", "--json", str(root.inside("/app/logs/k3s.log")))
    ids = [p["id"] for p in json.loads(got.stdout)["problems"]]
    assert "k3s.cgroupv2-unsupported" in ids
    assert ids == [p["id"] for p in json.loads(want.stdout)["problems"]]
    # The human text too, zh then en, from the rules packaged inside.
    text = root.run("explain", "/app/logs/k3s.log").stdout
    assert "cgroup v2" in text and "K3s" in text


def _status_file_from_the_source_tree(root: EmptyRoot, events: list[str]) -> Path:
    """A real status file: the source tree's listener fed ``events``, writing into the root's /app/status."""
    conf = root.path / "venv-watchdog.toml"
    conf.write_text(f'status_file = "{root.inside("/app/status/diagnosis.json")}"\n'
                    f'log_dir = "{root.inside("/app/logs")}"\n[host]\npaths = ["{root.path}"]\n')
    done = venv_watchdog("listen", input="".join(events), env={**clean_env(), "RAINBOND_WATCHDOG_CONFIG": str(conf),
                                                               "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return root.inside("/app/status/diagnosis.json")


def test_status_and_check_read_a_status_file(root: EmptyRoot) -> None:
    """Degraded → 1 with the remedy shown; missing → 2 in one sentence; JSON passes through."""
    k3s_log(root.inside("/app/logs/k3s.log"))
    events = [state_frame("RUNNING", "containerd", serial=1, pid=10),
              state_frame("BACKOFF", "k3s", serial=2, expected=0)]
    status = _status_file_from_the_source_tree(root, events)
    doc = json.loads(status.read_text())
    assert doc["overall"] in ("degraded", "failed")
    check = root.run("check")
    assert (check.returncode, check.stdout, check.stderr) == (1, "", "")
    shown = root.run("status")
    assert shown.returncode == 1 and "k3s.cgroupv2-unsupported" in shown.stdout
    as_json = root.run("status", "--json")
    assert json.loads(as_json.stdout)["problems"] == doc["problems"]
    missing = root.run("check", "--file", "/app/status/none.json")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "/app/status/none.json" in missing.stderr


def test_listen_answers_the_protocol_and_writes_its_diagnosis(root: EmptyRoot) -> None:
    """READY, one RESULT per event (a Chinese payload included), and the status file in /app/status."""
    k3s_log(root.inside("/app/logs/k3s.log"))
    events = [frame("PROCESS_LOG_STDOUT", "processname:init_rainbond groupname:init_rainbond pid:7 channel:stdout\n"
                    "2026-11-30 08:12:40 INFO: 正在加载镜像 ····", 1),
              state_frame("RUNNING", "containerd", serial=2, pid=10),
              state_frame("BACKOFF", "k3s", serial=3, expected=0)]
    got = root.run("listen", input="".join(events))
    assert got.returncode == 0, got.stderr
    assert got.stdout == "READY\n" + "RESULT 2\nOKREADY\n" * len(events)
    doc = json.loads(root.inside("/app/status/diagnosis.json").read_text())
    assert doc["components"]["k3s"]["state"] == "BACKOFF"
    assert "k3s.cgroupv2-unsupported" in {p["id"] for p in doc["problems"]}
    assert doc["watchdog"]["version"]
    assert "Traceback" not in got.stderr


def test_a_foreign_python_around_it_is_ignored(root: EmptyRoot) -> None:
    """PYTHONPATH/PYTHONHOME of the image's Python 3.6 (here pyenv's, mounted at the same path)."""
    py36 = _pyenv_version("3.6")
    root.bind(py36, str(py36))
    site = next(py36.glob("lib/python3.6/site-packages"))
    env = clean_env(PYTHONHOME=str(py36), PYTHONPATH=f"{site}:{py36}/lib/python3.6",
                    PATH=f"{py36}/bin:/usr/local/bin:/usr/bin:/bin")
    got = root.run("rules", env=env)
    assert got.returncode == 0, got.stderr
    assert _without_sources(got.stdout) == _without_sources(root.run("rules").stdout)
    k3s_log(root.inside("/app/logs/k3s.log"))
    explained = root.run("explain", "--json", "/app/logs/k3s.log", env=env)
    assert "k3s.cgroupv2-unsupported" in explained.stdout


def _pyenv_version(prefix: str) -> Path:
    base = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(base.glob(f"{prefix}.*")) if base.is_dir() else []
    if not found:
        pytest.skip(f"no Python {prefix} under {base} (pyenv install {prefix}.15 provides one)")
    return found[-1]


def test_the_image_layout_runs_through_the_link_in_usr_local_bin(bundle: Bundle, tmp_path: Path) -> None:
    """As deploy/Dockerfile.allinone lays it out: the folder at its prefix, a link on PATH."""
    with empty_root(tmp_path, bundle, "onedir") as er:
        link = er.inside("/usr/local/bin/rainbond-watchdog")
        link.parent.mkdir(parents=True)
        link.symlink_to(ONEDIR_AT)
        got = subprocess.run([CHROOT, str(er.path), "rainbond-watchdog", "rules"], capture_output=True, text=True,
                             env=clean_env(), timeout=120)
    assert got.returncode == 0, got.stderr
    assert f"< {ONEDIR_PREFIX}/_internal/watchdog/conf/rules.toml" in got.stdout
