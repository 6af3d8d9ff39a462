"""What a host sample means: disk space and inodes, the init script's minimums, host-share storage.

Pure: a ``HostSample`` and the settings in, findings out (scope ``host``). The app reads the host
in a background task and calls ``host_findings`` when a new sample arrives or image loading fails.
"""
from __future__ import annotations

import dataclasses
import posixpath
from typing import Iterable, Sequence

from watchdog.config import HostSettings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Finding, HostSample, Mount, PathUsage, Severity

SCOPE = "host"
BIND_MOUNT_ID = "images.bind-mount-storage"
BIND_MOUNT_EARLY_ID = "images.bind-mount-storage-early"
"""Catalog texts of ``images.bind-mount-storage`` while image loading has not failed (yet)."""
MIB = 1024 * 1024
GIB = 1024 * MIB

HOST_SHARE_FSTYPES = frozenset(
    {
        "fakeowner",  # Docker Desktop for Mac, virtiofs file sharing
        "grpcfuse",
        "fuse.grpcfuse",  # Docker Desktop for Mac/Windows, gRPC FUSE file sharing
        "virtiofs",
        "osxfs",
        "fuse.osxfs",  # Docker Desktop for Mac, before gRPC FUSE
        "9p",  # Docker Desktop on WSL 2: Windows drives seen through Plan 9
        "drvfs",  # WSL's Windows drives
        "vboxsf",  # Docker Toolbox (VirtualBox shared folders)
        "prl_fs",  # Parallels shared folders
    }
)
"""Filesystems of a Docker Desktop (or VM) host share: a bind mount of the user's Mac or Windows
folder. containerd's overlayfs snapshotter cannot live on them: ``nerdctl load`` fails and the
image's script loops (the seed's "Load 失败" on Win/Mac with ``-v local:/app/data``)."""


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount a path lives on: the last-mounted entry with the longest matching mount point."""
    target = posixpath.normpath(path)
    best: Mount | None = None
    for m in mounts:
        mp = posixpath.normpath(m.mountpoint)
        inside = target == mp or mp == "/" or target.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(posixpath.normpath(best.mountpoint))):
            best = m
    return best


def is_host_share(mount: Mount | None) -> bool:
    return mount is not None and mount.fstype.lower() in HOST_SHARE_FSTYPES


def _usage_line(path: str, u: PathUsage) -> str:
    inodes = "" if u.inodes_free_percent is None else f", inodes {u.inodes_free_percent:.1f}% free"
    return f"{path}: {gib(u.free_bytes)} free ({u.free_percent:.1f}%){inodes}"


def _one_path_per_filesystem(paths: Iterable[str], mounts: Sequence[Mount]) -> list[str]:
    """Watched paths on the same filesystem share its space: judge the first of each only."""
    seen: set[str] = set()
    out: list[str] = []
    for path in paths:
        m = mount_of(path, mounts)
        key = m.mountpoint if m is not None else path
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def disk_findings(rules: RuleBook, sample: HostSample, hs: HostSettings) -> list[Finding]:
    """``host.disk-full`` below ``disk_full_percent`` (space or inodes), else ``host.disk-low``."""
    out: list[Finding] = []
    for path in _one_path_per_filesystem(sample.paths, sample.mounts):
        u = sample.paths[path]
        inodes = u.inodes_free_percent
        full = u.free_percent < hs.disk_full_percent or (inodes is not None and inodes < hs.disk_full_percent)
        low = u.free_percent < hs.disk_low_percent or (inodes is not None and inodes < hs.inodes_low_percent)
        if not (full or low):
            continue
        evidence = [_usage_line(path, u)]
        if full:
            evidence.append(f"below {hs.disk_full_percent:g}% free space or inodes: writes are about to fail")
        else:
            evidence.append(
                f"thresholds: {hs.disk_low_percent:g}% free space, {hs.inodes_low_percent:g}% free inodes "
                "(the kubelet evicts pods below 10% nodefs / 15% imagefs / 5% inodes)"
            )
        out.append(
            rules.finding(
                "host.disk-full" if full else "host.disk-low",
                path,
                evidence=evidence,
                source=f"host:{path}",
                scope=SCOPE,
                details={
                    "path": path,
                    "free": gib(u.free_bytes),
                    "percent": f"{u.free_percent:.1f}",
                    "inodes": "?" if inodes is None else f"{inodes:.1f}",
                    "threshold": f"{hs.disk_low_percent:g}",
                },
            )
        )
    return out


def resource_findings(rules: RuleBook, sample: HostSample, hs: HostSettings) -> list[Finding]:
    """The init script's warnings, as ``info``: under 2048 MB memory, 2 CPUs, 50 GB free."""
    out: list[Finding] = []
    if sample.memory_bytes is not None and sample.memory_bytes < hs.min_memory_mb * MIB:
        mb = sample.memory_bytes // MIB
        out.append(
            rules.finding(
                "host.memory-low",
                "memory",
                evidence=[f"memory: {mb} MB (the init script recommends at least {hs.min_memory_mb} MB)"],
                source="host:memory",
                scope=SCOPE,
                details={"memory_mb": str(mb), "min_mb": str(hs.min_memory_mb)},
            )
        )
    if sample.cpus is not None and sample.cpus < hs.min_cpus:
        out.append(
            rules.finding(
                "host.cpu-few",
                "cpu",
                evidence=[f"CPUs: {sample.cpus} (the init script recommends at least {hs.min_cpus})"],
                source="host:cpu",
                scope=SCOPE,
                details={"cpus": str(sample.cpus), "min_cpus": str(hs.min_cpus)},
            )
        )
    data = sample.paths.get(hs.data_dir)
    if data is not None and data.free_bytes < hs.min_free_disk_mb * MIB:
        out.append(
            rules.finding(
                "host.disk-small",
                hs.data_dir,
                evidence=[
                    _usage_line(hs.data_dir, data),
                    f"the init script recommends more than {hs.min_free_disk_mb // 1024} GB free",
                ],
                source=f"host:{hs.data_dir}",
                scope=SCOPE,
                details={"path": hs.data_dir, "free": gib(data.free_bytes), "min_gb": str(hs.min_free_disk_mb // 1024)},
            )
        )
    return out


def storage_findings(
    rules: RuleBook, sample: HostSample, hs: HostSettings, load_failure: Sequence[str] | None
) -> list[Finding]:
    """``images.bind-mount-storage``: a warning at once, an error once image loading fails.

    ``load_failure`` is the evidence of an active ``images.load-failed`` problem, or ``None``.
    """
    mount = mount_of(hs.data_dir, sample.mounts)
    if mount is None or not is_host_share(mount):
        return []
    evidence = [f"{hs.data_dir} is on {mount.source or '?'} mounted at {mount.mountpoint} (type {mount.fstype})"]
    failed = load_failure is not None
    if load_failure is not None:
        evidence.append("image loading fails:")
        evidence.extend(list(load_failure)[-10:])
    # Before loading fails the texts say it will ("-early"); after, the log rule's texts say it does.
    texts_id = BIND_MOUNT_ID if failed and BIND_MOUNT_ID in _known_ids(rules) else BIND_MOUNT_EARLY_ID
    finding = rules.finding(
        texts_id,
        hs.data_dir,
        evidence=evidence,
        source=f"host:{hs.data_dir}",
        scope=SCOPE,
        component="images",
        severity=Severity.ERROR if failed else Severity.WARNING,
        details={"path": hs.data_dir, "fstype": mount.fstype},
    )
    return [dataclasses.replace(finding, id=BIND_MOUNT_ID)]


def _known_ids(rules: RuleBook) -> set[str]:
    return {r.id for r in rules.rules} | set(rules.entries)


def host_findings(
    rules: RuleBook, sample: HostSample, hs: HostSettings, load_failure: Sequence[str] | None = None
) -> list[Finding]:
    """Every host finding of one sample (the scope's complete current set)."""
    disks = disk_findings(rules, sample, hs)
    short = {f.subject for f in disks}
    # A path already low or full needs no "small" note as well.
    resources = [f for f in resource_findings(rules, sample, hs) if not (f.id == "host.disk-small" and f.subject in short)]
    return [*disks, *storage_findings(rules, sample, hs, load_failure), *resources]
