"""What each real supervisord generation sends: ``len`` in bytes under 3.3.1 (Python 2.7), characters under 4."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.framing import DOTS, init_line
from tests.helpers import reaped, wait_for
from tests.integration.supervisor_env import GENERATIONS, Program, Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDER = Path(__file__).with_name("recorder.py")
LINE = init_line("INFO", f"Containerd is starting, please wait {DOTS} 镜像")
"""What the program prints: ANSI colour, a run of ``·`` (2 bytes each), Chinese (3 bytes each)."""


def _recorded(path: Path) -> list[dict[str, str]]:
    try:
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: f"supervisor{g}")
def test_header_len_counts_bytes_under_3_and_characters_under_4(tmp_path: Path, generation: int) -> None:
    """A known non-ASCII PROCESS_LOG payload, as really framed by each real supervisord."""
    printer = tmp_path / "printer.py"
    printer.write_text(f"import sys, time\nsys.stdout.buffer.write({LINE!r})\nsys.stdout.flush()\ntime.sleep(60)\n")
    record = tmp_path / "recorded.jsonl"
    with reaped() as reaper:
        sup = Supervisor(tmp_path, reaper, [
            Program("printer", f"{sys.executable} {printer}", str(tmp_path / "logs" / "printer.log"),
                    {"stdout_events_enabled": "true", "autorestart": "false", "startsecs": "0", "priority": "50"}),
        ], {}, generation, extra_sections=(
            f"\n[eventlistener:recorder]\ncommand={sys.executable} {RECORDER} {record}\n"
            "events=PROCESS_LOG\nbuffer_size=10\nstdout_logfile=NONE\nstderr_logfile=NONE\npriority=1\n"))
        try:
            sup.start()
            logs = wait_for(lambda: [r for r in _recorded(record) if "PROCESS_LOG_STDOUT" in r["header"]
                                     and b"processname:printer" in bytes.fromhex(r["payload"])], 30,
                            what="the printer's PROCESS_LOG event")
        finally:
            sup.stop()
    header = dict(t.split(":", 1) for t in logs[0]["header"].split())
    payload = bytes.fromhex(logs[0]["payload"])
    assert payload.endswith(LINE)  # nothing re-encoded: the program's bytes
    n_bytes, n_chars = len(payload), len(payload.decode("utf-8"))
    assert n_bytes > n_chars
    assert int(header["len"]) == (n_bytes if generation == 3 else n_chars)


def test_characters_forced_under_3_resyncs_and_keeps_diagnosing(tmp_path: Path) -> None:
    """The wrong unit on purpose: under 3.3.1 each non-ASCII payload comes up short, is answered
    at once (one `protocol_resync` line), and the events after it are still read and diagnosed."""
    printer = tmp_path / "printer.py"
    printer.write_text(f"import sys, time\nfor _ in range(3):\n    sys.stdout.buffer.write({LINE!r})\n"
                       "    sys.stdout.flush()\n    time.sleep(0.3)\ntime.sleep(60)\n")
    with reaped() as reaper:
        sup = Supervisor(tmp_path, reaper, [
            Program("printer", f"{sys.executable} {printer}", str(tmp_path / "logs" / "printer.log"),
                    {"stdout_events_enabled": "true", "autorestart": "false", "startsecs": "0", "priority": "50"}),
            Program("k3s", f"{sys.executable} -m tests.allinone.fake_k3s --scenario crash",
                    str(tmp_path / "logs" / "k3s.log"), {"priority": "60", "startretries": "1", "startsecs": "2"}),
        ], {"supervisor_len_unit": "characters", "resolve_after_seconds": 2.0}, 3)
        try:
            sup.start()
            wait_for(lambda: '"protocol_resync"' in sup.listener_stderr(), 30, what="a protocol_resync line")
            wait_for(lambda: sup.state("k3s") == "FATAL", 30, what="k3s FATAL")
            wait_for(lambda: (d := _status(sup)) and d["components"]["k3s"]["state"] == "FATAL"
                     and any(p["subject"] == "k3s" for p in d["problems"]), 20, what="the FATAL k3s diagnosed")
        finally:
            sup.stop()
    err = sup.listener_stderr()
    events = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    resyncs = [e for e in events if e["event"] == "protocol_resync"]
    assert len(resyncs) == 1 and resyncs[0]["unit"] == "characters" and resyncs[0]["received"] < resyncs[0]["len"]
    assert not [e for e in events if e["event"] == "protocol_error"]
    log = sup.supervisord_log()
    assert "bad result" not in log.lower() and "entered UNKNOWN state" not in log
    assert "watchdog event buffer overflowed" not in log


def _status(sup: Supervisor) -> dict:  # type: ignore[type-arg]
    try:
        return dict(json.loads(sup.status_file.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
