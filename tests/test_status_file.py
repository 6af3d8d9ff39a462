"""Rendering, atomic writing and reading of the status file."""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from watchdog.model import HostView, Overall, ProcessView, RegionView
from watchdog.sinks.status_file import (
    Snapshot,
    StatusUnavailable,
    dumps,
    exit_code,
    read_status,
    remove_stale_temporaries,
    render,
    write_atomic,
)

NOW = 1_790_000_000.0


def snapshot(overall: Overall = Overall.STARTING, at: float = NOW) -> Snapshot:
    return Snapshot(at, "0.1.0", 1, at - 10, overall, "k3s", {"containerd": ProcessView("RUNNING", at - 5, 7)},
                    RegionView(), HostView(), {"containerd": at - 5}, (), ())


def test_render_follows_the_contract_top_level_fields() -> None:
    doc = render(snapshot())
    assert doc["schema"] == 1
    assert set(doc) >= {"generated_at", "watchdog", "overall", "phase", "layout", "components", "timeline", "problems",
                        "resolved"}
    assert doc["generated_at"].endswith("Z")
    assert doc["components"]["containerd"] == {"state": "RUNNING", "since": doc["timeline"]["containerd"],
                                               "pid": 7, "exitstatus": None, "restarts": 0}
    assert set(doc["components"]["region"]) == {"api", "pods_total", "pods_ready", "pods"}
    assert doc["timeline"]["k3s"] is None and "ready" in doc["timeline"]


def test_render_names_the_layout() -> None:
    """The contract's `layout` field: which image layout the listener found."""
    assert render(snapshot())["layout"] == "containerd"
    assert render(dataclasses.replace(snapshot(), layout="embedded"))["layout"] == "embedded"


def test_write_is_atomic_with_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "status" / "diagnosis.json"
    write_atomic(str(path), dumps(render(snapshot())))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text())["schema"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["diagnosis.json"]  # no temporary left behind


def _write_forever(path: str) -> None:
    i = 0
    while True:
        i += 1
        write_atomic(path, json.dumps({"schema": 1, "n": i, "pad": "x" * (1000 + i % 5000)}))


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """A reader racing a writer always parses a whole document."""
    path = tmp_path / "diagnosis.json"
    write_atomic(str(path), json.dumps({"schema": 1, "n": 0}))
    writer = multiprocessing.get_context("fork").Process(target=_write_forever, args=(str(path),), daemon=True)
    writer.start()
    try:
        seen = set()
        for _ in range(3000):
            seen.add(json.loads(path.read_text())["n"])
        assert len(seen) > 1  # the writer really was writing meanwhile
    finally:
        writer.kill()
        writer.join(5)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "diagnosis.json"
    write_atomic(str(path), '{"schema": 1}')
    with pytest.raises(UnicodeEncodeError):
        write_atomic(str(path), '{"half": "\ud800"}')  # fails after the temporary file was created
    assert path.read_text() == '{"schema": 1}'
    assert os.listdir(tmp_path) == ["diagnosis.json"]


def test_read_status_rejects_missing_invalid_and_stale(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    with pytest.raises(StatusUnavailable, match="no status file"):
        read_status(str(path), NOW, 180)
    path.write_text("{not json")
    with pytest.raises(StatusUnavailable, match="not valid JSON"):
        read_status(str(path), NOW, 180)
    path.write_text(json.dumps({"schema": 2}))
    with pytest.raises(StatusUnavailable, match="schema"):
        read_status(str(path), NOW, 180)
    write_atomic(str(path), dumps(render(snapshot(at=NOW - 1000))))
    with pytest.raises(StatusUnavailable, match="stale"):
        read_status(str(path), NOW, 180)
    write_atomic(str(path), dumps(render(snapshot(at=NOW - 10))))
    assert read_status(str(path), NOW, 180)["phase"] == "k3s"


@pytest.mark.parametrize(("overall", "code"), [("healthy", 0), ("starting", 0), ("degraded", 1), ("failed", 1)])
def test_exit_code_follows_overall(overall: str, code: int) -> None:
    assert exit_code({"overall": overall}) == code


def test_stale_temporaries_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    """A writer killed mid-write leaves a temporary; the next listener start removes old ones only."""
    status = tmp_path / "diagnosis.json"
    old, fresh, other = tmp_path / ".diagnosis.abc.tmp", tmp_path / ".diagnosis.def.tmp", tmp_path / "notes.tmp"
    for p in (old, fresh, other):
        p.write_text("{")
    os.utime(old, (NOW - 600, NOW - 600))
    os.utime(fresh, (NOW - 5, NOW - 5))
    os.utime(other, (NOW - 600, NOW - 600))
    removed = remove_stale_temporaries(str(status), NOW)
    assert removed == [str(old)]
    assert not old.exists() and fresh.exists() and other.exists()
