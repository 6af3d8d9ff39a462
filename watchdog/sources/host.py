"""The host → ``HostSample``: free space and inodes of the watched paths, memory, CPUs, mounts.

The only module that imports ``psutil``. Every call here may block (``statvfs`` on a hung NFS
server does), so the app runs ``HostReader.sample`` in a background task, never on the event path.
The mount table is read through an injected reader so that tests can hand in any table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import psutil

from watchdog.model import HostSample, Mount, PathUsage

MOUNTS_FILE = "/proc/self/mounts"
CGROUP_V2_MEMORY_MAX = "/sys/fs/cgroup/memory.max"
CGROUP_V1_MEMORY_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
_NO_LIMIT = 1 << 60
"""cgroup v1 writes a huge number (about 2^63) for "no limit"."""


def read_text_file(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read(4 * 1024 * 1024)


def path_usage(path: str) -> PathUsage:
    """Free space (what an unprivileged writer may use, as ``df``) and free inodes of a path."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    free_percent = 100.0 * free / total if total else 0.0
    # Filesystems without inode accounting (btrfs, some FUSE) report 0 inodes: no inode figure.
    inodes = 100.0 * st.f_favail / st.f_files if st.f_files else None
    return PathUsage(free_bytes=free, free_percent=free_percent, inodes_free_percent=inodes)


def _unescape(field: str) -> str:
    """Mount table fields escape space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and all(c in "01234567" for c in field[i + 1 : i + 4]):
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> tuple[Mount, ...]:
    """``/proc/self/mounts`` (fstab format: source, mountpoint, type, options, 0, 0) → mounts."""
    out: list[Mount] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        out.append(Mount(mountpoint=_unescape(parts[1]), fstype=parts[2], source=_unescape(parts[0])))
    return tuple(out)


def memory_limit_bytes(read: Callable[[str], str] = read_text_file) -> int | None:
    """The container's cgroup memory limit, if one is set (cgroup v2, then v1)."""
    for path in (CGROUP_V2_MEMORY_MAX, CGROUP_V1_MEMORY_LIMIT):
        try:
            raw = read(path).strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < _NO_LIMIT:
            return int(raw)
        return None
    return None


class HostReader:
    """Reads the host; the mount table and cgroup files through an injected reader."""

    def __init__(self, read: Callable[[str], str] = read_text_file, mounts_file: str = MOUNTS_FILE) -> None:
        self._read = read
        self._mounts_file = mounts_file

    def sample(self, paths: Sequence[str]) -> HostSample:
        usages: dict[str, PathUsage] = {}
        notes: list[str] = []
        for path in paths:
            if not Path(path).exists():
                continue  # watched paths that do not exist are skipped
            try:
                usages[path] = path_usage(path)
            except OSError as e:
                notes.append(f"cannot measure {path}: {e.strerror or e}")
        memory: int | None = None
        try:
            memory = int(psutil.virtual_memory().total)
        except (OSError, RuntimeError) as e:
            notes.append(f"cannot read the memory size: {e}")
        limit = memory_limit_bytes(self._read)
        if limit is not None:
            memory = limit if memory is None else min(memory, limit)
        # The init script counts "processor" lines of /proc/cpuinfo: the logical CPUs.
        cpus = psutil.cpu_count(logical=True)
        mounts: tuple[Mount, ...] = ()
        try:
            mounts = parse_mounts(self._read(self._mounts_file))
        except OSError as e:
            notes.append(f"cannot read the mount table {self._mounts_file}: {e.strerror or e}")
        return HostSample(paths=usages, memory_bytes=memory, cpus=cpus, mounts=mounts, notes=tuple(notes))
