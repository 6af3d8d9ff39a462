"""The host → ``HostSample``: free space and inodes of the watched paths, memory, CPUs, mounts,
the listener's capabilities.

The only module that imports ``psutil``. Every call here may block (``statvfs`` on a hung NFS
server does), so the app runs ``HostReader.sample`` in a background task, never on the event path.
The mount table is read through an injected reader so that tests can hand in any table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import psutil

from watchdog.model import Capabilities, HostSample, Mount, PathUsage

MOUNTS_FILE = "/proc/self/mounts"
STATUS_FILE = "/proc/self/status"
CAP_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"
CGROUP_V2_MEMORY_MAX = "/sys/fs/cgroup/memory.max"
CGROUP_V1_MEMORY_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
_NO_LIMIT = 1 << 60
"""cgroup v1 writes a huge number (about 2^63) for "no limit"."""


READ_LIMIT = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024
"""A /proc/sys file allocates a kernel buffer of the size asked for: 4 MB at once fails (ENOMEM)."""


def read_text_file(path: str) -> str:
    """At most ``READ_LIMIT`` characters of a text file, read in small chunks."""
    parts: list[str] = []
    size = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        while size < READ_LIMIT:
            chunk = fh.read(min(READ_CHUNK, READ_LIMIT - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    return "".join(parts)


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


def parse_capabilities(status: str, last_cap: str | None = None) -> Capabilities | None:
    """``CapEff`` and ``CapBnd`` of a ``/proc/PID/status`` text (hex masks); None without ``CapEff``.

    ``last_cap`` is the text of ``/proc/sys/kernel/cap_last_cap`` (a decimal number), if read.
    """
    masks: dict[str, int] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapEff", "CapBnd"):
            try:
                masks[key] = int(value.strip(), 16)
            except ValueError:
                return None
    if "CapEff" not in masks:
        return None
    last = last_cap.strip() if last_cap is not None else ""
    return Capabilities(
        effective=masks["CapEff"], bounding=masks.get("CapBnd"), last_cap=int(last) if last.isdigit() else None
    )


def read_capabilities(read: Callable[[str], str] = read_text_file) -> Capabilities | None:
    """The listener's own capability sets: those of the container when it runs as root."""
    status = read(STATUS_FILE)
    try:
        last: str | None = read(CAP_LAST_CAP_FILE)
    except OSError:
        last = None
    return parse_capabilities(status, last)


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
        capabilities: Capabilities | None = None
        try:
            capabilities = read_capabilities(self._read)
        except OSError as e:
            notes.append(f"cannot read the capabilities in {STATUS_FILE}: {e.strerror or e}")
        return HostSample(paths=usages, memory_bytes=memory, cpus=cpus, mounts=mounts, notes=tuple(notes),
                          capabilities=capabilities)
