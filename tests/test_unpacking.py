"""The one-file build's leftovers: which unpacked folders are stale, and removing only those."""
from __future__ import annotations

import os
import time
from pathlib import Path

from watchdog import unpacking
from watchdog.unpacking import Candidate, clean_leftovers, folders_in_use, stale, unpack_dirs

NOW = 1_000_000.0


def test_unpack_dirs_are_staticx_and_pyinstaller_folders_only() -> None:
    env = {"STATICX_BUNDLE_DIR": "/tmp/staticx-AbC123/"}
    assert unpack_dirs(env, "/tmp/_MEI12345") == ["/tmp/staticx-AbC123", "/tmp/_MEI12345"]
    assert unpack_dirs({}, None) == []
    assert unpack_dirs({"STATICX_BUNDLE_DIR": "/home/x"}, "/usr/lib/app") == []


def test_stale_needs_old_enough_ours_unused_and_not_this_start() -> None:
    cands = [Candidate("/t/_MEIold", 0, NOW - 600), Candidate("/t/_MEIyoung", 0, NOW - 5),
             Candidate("/t/_MEIforeign", 1000, NOW - 600), Candidate("/t/staticx-used", 0, NOW - 600),
             Candidate("/t/staticx-mine", 0, NOW - 600)]
    assert stale(cands, ["/t/staticx-used"], ["/t/staticx-mine"], uid=0, now=NOW) == ["/t/_MEIold"]


def test_folders_in_use_reads_exe_links_and_mapped_files(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "10").mkdir(parents=True)
    (proc / "10" / "exe").symlink_to("/t/staticx-a/rainbond-watchdog")
    (proc / "11").mkdir()
    (proc / "11" / "maps").write_text(
        "7f00-7f01 r-xp 00000000 08:01 123 /t/_MEIb/libpython3.11.so.1.0\n7f02-7f03 rw-p 00000000 00:00 0 \n")
    (proc / "self").mkdir()
    used = folders_in_use(["/t/staticx-a", "/t/_MEIb", "/t/_MEIc", "/t/_MEI"], proc=str(proc))
    assert used == {"/t/staticx-a", "/t/_MEIb"}


def test_clean_leftovers_removes_old_unused_folders_beside_this_start(tmp_path: Path) -> None:
    for name in ("staticx-old111", "_MEIold222", "_MEIyoung", "staticx-mine", "_MEImine", "unrelated"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lib.so").write_bytes(b"x")
    for name in ("staticx-old111", "_MEIold222", "staticx-mine", "_MEImine", "unrelated"):
        os.utime(tmp_path / name, (NOW - 3600, NOW - 3600))
    os.utime(tmp_path / "_MEIyoung", (NOW - 1, NOW - 1))
    removed = clean_leftovers(NOW, env={"STATICX_BUNDLE_DIR": str(tmp_path / "staticx-mine")},
                              meipass=str(tmp_path / "_MEImine"), uid=os.geteuid())
    assert removed == [str(tmp_path / "_MEIold222"), str(tmp_path / "staticx-old111")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_MEImine", "_MEIyoung", "staticx-mine", "unrelated"]


def test_clean_leftovers_keeps_a_folder_a_running_process_uses(tmp_path: Path) -> None:
    """This test's own interpreter maps a file copied into an old _MEI folder: it stays."""
    busy = tmp_path / "_MEIbusy"
    busy.mkdir()
    lib = busy / "mapped.bin"
    lib.write_bytes(b"\0" * 4096)
    import mmap

    with open(lib, "rb") as fh, mmap.mmap(fh.fileno(), 4096, prot=mmap.PROT_READ):
        os.utime(busy, (NOW - 3600, NOW - 3600))
        removed = clean_leftovers(NOW, env={}, meipass=str(tmp_path / "_MEImine"), uid=os.geteuid())
        assert removed == [] and busy.exists()


def test_nothing_happens_outside_the_one_file_build(tmp_path: Path) -> None:
    assert clean_leftovers(time.time(), env={}, meipass=None) == []
    assert unpacking.MIN_AGE_SECONDS >= 10
