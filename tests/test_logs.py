"""Reading the end of a log, bounded, whatever the file is."""
from __future__ import annotations

import os
from pathlib import Path

from watchdog.sources.logs import read_tail


def test_small_file_gives_its_last_lines(tmp_path: Path) -> None:
    p = tmp_path / "k3s.log"
    p.write_text("".join(f"line {i}\n" for i in range(500)))
    tail = read_tail(str(p), max_bytes=65536, max_lines=200)
    assert len(tail.lines) == 200
    assert tail.lines[-1] == "line 499" and tail.lines[0] == "line 300"
    assert tail.notes == ()


def test_large_file_is_read_from_the_end_only(tmp_path: Path) -> None:
    """Only max_bytes are read: the first line cut by the seek is dropped, not quoted half."""
    p = tmp_path / "big.log"
    with open(p, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: 50 MB of zeros...
        fh.seek(0, os.SEEK_END)
        fh.write(b"".join(b"k3s level=info msg=\"row %d\"\n" % i for i in range(5000)))
    tail = read_tail(str(p), max_bytes=4096, max_lines=200)
    assert tail.lines[-1] == 'k3s level=info msg="row 4999"'
    assert all(line.startswith("k3s level=info") for line in tail.lines)
    assert len("\n".join(tail.lines)) <= 4096


def test_missing_file_gives_a_note(tmp_path: Path) -> None:
    tail = read_tail(str(tmp_path / "nope.log"))
    assert tail.lines == () and "does not exist" in tail.notes[0]


def test_directory_gives_a_note(tmp_path: Path) -> None:
    tail = read_tail(str(tmp_path))
    assert tail.lines == () and "directory" in tail.notes[0]


def test_binary_file_is_not_quoted(tmp_path: Path) -> None:
    p = tmp_path / "bin.log"
    p.write_bytes(os.urandom(2048) + b"\0" * 2048)
    tail = read_tail(str(p))
    assert tail.lines == () and "binary" in tail.notes[0]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "mixed.log"
    p.write_bytes(b"ok line\n\xff\xfe broken \xc3\n\xe4\xb8\xad\xe6\x96\x87\n")
    tail = read_tail(str(p))
    assert tail.lines[0] == "ok line" and "broken" in tail.lines[1] and tail.lines[2] == "中文"


def test_rotated_log_includes_the_end_of_the_previous_file(tmp_path: Path) -> None:
    """supervisord rotates to .1: a fresh, short log is completed by the end of the old one."""
    p = tmp_path / "k3s.log"
    (tmp_path / "k3s.log.1").write_text("old 1\nold 2\nlevel=fatal msg=\"the cause\"\n")
    p.write_text("new 1\n")
    tail = read_tail(str(p), max_lines=10)
    assert tail.lines == ("old 1", "old 2", 'level=fatal msg="the cause"', "new 1")
    assert any("rotated" in n for n in tail.notes)


def test_single_huge_line_gives_its_end_with_a_note(tmp_path: Path) -> None:
    p = tmp_path / "one.log"
    p.write_bytes(b"x" * 200_000 + b" the end")
    tail = read_tail(str(p), max_bytes=1000)
    assert len(tail.lines) == 1 and tail.lines[0].endswith("the end") and len(tail.lines[0]) <= 1000
    assert any("longer than" in n for n in tail.notes)


def test_modified_times_skips_missing_files_and_folders(tmp_path: Path) -> None:
    from watchdog.sources.logs import modified_times

    f = tmp_path / "dind.log"
    f.write_text("x\n")
    os.utime(f, (1000.0, 1000.0))
    got = modified_times({"dockerd": str(f), "containerd": str(tmp_path / "none.log"), "embedded": str(tmp_path)})
    assert got == {"dockerd": 1000.0}
