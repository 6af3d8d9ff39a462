"""`rainbond-watchdog explain` and `rainbond-watchdog rules`: files or stdin, exit codes, JSON, streaming."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.cli import main

PORT = 'time="2026-11-30T08:12:44Z" level=fatal msg="starting kubernetes: listen tcp :6443: bind: address already in use"'
CNI = ('time="2026-11-30T01:05:13Z" level=error msg="failed to load cni during init, please check CRI plugin status before '
       'setting up network for pods" error="cni config load failed: no network config found in /etc/cni/net.d"')
DB = """django.db.utils.OperationalError: (2003, "Can't connect to MySQL server on '127.0.0.1' (111)")"""
DISK = "write /app/data/k3s/server/db/state.db: no space left on device"


def _write(tmp_path: Path, name: str, *lines: str) -> str:
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines))
    return str(p)


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "watchdog", *args], input=stdin, capture_output=True, timeout=60)


def test_nothing_matched_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", _write(tmp_path, "containerd.log", "level=info msg=serving...", CNI)]) == 0
    out = capsys.readouterr().out
    assert "containerd.log" in out


def test_problem_found_exits_1_with_json_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "k3s.log", "level=info msg=starting", PORT, "level=info msg=bye")
    assert main(["explain", "--json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    [problem] = doc["problems"]
    assert problem["id"] == "k3s.port-in-use"
    assert problem["subject"] == path and problem["source"] == path
    assert problem["severity"] == "error" and problem["component"] == "k3s"
    assert set(problem["summary"]) == {"zh", "en"} and problem["remediation"]["en"]
    assert problem["evidence"] == ["1: level=info msg=starting", f"2: {PORT}", "3: level=info msg=bye"]
    assert not {"first_seen", "last_seen", "count"} & set(problem)


def test_several_files_and_causes_most_severe_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gc = ('I1130 08:12:44.000000 59 image_gc_manager.go:310] "Disk usage on image filesystem is over the high threshold, '
          'trying to free bytes down to the low threshold" usage=91 highThreshold=85')
    a = _write(tmp_path, "k3s.log", gc, PORT)
    b = _write(tmp_path, "console.log", DB, DISK)
    assert main(["explain", "--json", a, b]) == 1
    found = [(p["subject"], p["id"]) for p in json.loads(capsys.readouterr().out)["problems"]]
    assert found == [(a, "k3s.port-in-use"), (a, "k3s.image-gc-over-threshold"),
                     (b, "console.db-unreachable"), (b, "host.disk-full")]


def test_component_keeps_its_rules_and_the_host_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "mixed.log", PORT, DB, DISK)
    assert main(["explain", "--json", "--component", "console", path]) == 1
    ids = [p["id"] for p in json.loads(capsys.readouterr().out)["problems"]]
    assert sorted(ids) == ["console.db-unreachable", "host.disk-full"]


def test_human_output_is_in_the_configured_languages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "watchdog.toml"
    conf.write_text('language = "en"\n')
    assert main(["explain", "--config", str(conf), _write(tmp_path, "k3s.log", PORT)]) == 1
    out = capsys.readouterr().out
    assert "k3s.port-in-use" in out and "already in use" in out
    assert "处理建议" not in out


@pytest.mark.parametrize("args", [["explain"], ["explain", "--component", "k8s", "x.log"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2


def test_unreadable_input_exits_2_with_one_sentence(tmp_path: Path) -> None:
    ok = _write(tmp_path, "k3s.log", PORT)
    r = _cli("explain", ok, str(tmp_path / "missing.log"))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "missing.log" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert r.stdout == b""
    assert _cli("explain", str(tmp_path)).returncode == 2


def test_stdin_is_read_with_a_dash() -> None:
    r = _cli("explain", "--json", "-", stdin=(CNI + "\n" + PORT + "\n").encode())
    assert r.returncode == 1, r.stderr
    [problem] = json.loads(r.stdout)["problems"]
    assert problem["id"] == "k3s.port-in-use" and problem["subject"] == "stdin"
    assert _cli("explain", "-", stdin=CNI.encode()).returncode == 0


def test_evidence_is_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "k3s.log", "k3s server --token hunter2hunter2", PORT)
    assert main(["explain", "--json", path]) == 1
    out = capsys.readouterr().out
    assert "hunter2" not in out and "--token ***" in out


def test_rules_lists_every_rule_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rid in ("containerd.config-invalid", "k3s.port-in-use", "console.db-access-denied", "host.disk-full"):
        assert rid in out


def test_rules_check_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = Path(__file__).resolve().parents[1] / "conf" / "rules.toml"
    assert main(["rules", "--check", str(conf)]) == 0
    assert "valid" in capsys.readouterr().out


def test_rules_check_invalid_file_exits_2_naming_file_rule_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(
        '[[rule]]\nid = "k3s.mine"\ncomponent = "k3s"\nseverity = "error"\npatterns = ["oops ("]\n'
        'summary.zh = "x"\nsummary.en = "x"\nremediation.zh = ["x"]\nremediation.en = ["x"]\nexamples = ["oops ("]\n'
    )
    r = _cli("rules", "--check", str(bad))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "mine.toml" in err and "k3s.mine" in err and "regular expression" in err and "Traceback" not in err


@pytest.mark.slow
def test_explain_streams_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    """~300 MB of log: the child's peak memory stays far below the file's size."""
    path = tmp_path / "huge.log"
    noise = ("I1130 08:12:44.000000 59 reconciler.go:357] operationExecutor.VerifyControllerAttachedVolume started "
             "for volume kube-api-access pod=rbd-system/rbd-api\n") * 2000
    with open(path, "w") as fh:
        for i in range(1000):
            fh.write(noise)
            if i % 100 == 0:
                fh.write(PORT + "\n")
    size = path.stat().st_size
    assert size > 250 * 1024 * 1024
    probe = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'watchdog', 'explain', '--json', {str(path)!r}], capture_output=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, len(r.stdout))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    code, max_rss_kib, _ = (int(x) for x in out.stdout.split())
    assert code == 1, out.stderr
    assert max_rss_kib * 1024 < 120 * 1024 * 1024 < size
