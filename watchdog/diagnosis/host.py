"""What a host sample means: disk space and inodes, the init script's minimums, host-share storage,
privileges; and which of several causes an ambiguous log line has, given those host facts.

Pure: a ``HostSample`` and the settings in, findings out (scope ``host``). The app reads the host
in a background task and calls ``host_findings`` when a new sample arrives or image loading fails,
and passes every log finding through ``with_host_facts``.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Iterable, Sequence

from watchdog.config import HostSettings
from watchdog.diagnosis.rules import RuleBook, bound_evidence
from watchdog.model import Capabilities, Finding, HostSample, Mount, PathUsage, Severity

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


# ----------------------------------------------------------------------------- privileges

NOT_PRIVILEGED_ID = "host.not-privileged"
PRIVILEGED_SUBJECT = "container"
CAP_NAMES = {
    0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 2: "CAP_DAC_READ_SEARCH", 3: "CAP_FOWNER", 4: "CAP_FSETID",
    5: "CAP_KILL", 6: "CAP_SETGID", 7: "CAP_SETUID", 8: "CAP_SETPCAP", 9: "CAP_LINUX_IMMUTABLE",
    10: "CAP_NET_BIND_SERVICE", 11: "CAP_NET_BROADCAST", 12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW",
    14: "CAP_IPC_LOCK", 15: "CAP_IPC_OWNER", 16: "CAP_SYS_MODULE", 17: "CAP_SYS_RAWIO", 18: "CAP_SYS_CHROOT",
    19: "CAP_SYS_PTRACE", 20: "CAP_SYS_PACCT", 21: "CAP_SYS_ADMIN", 22: "CAP_SYS_BOOT", 23: "CAP_SYS_NICE",
    24: "CAP_SYS_RESOURCE", 25: "CAP_SYS_TIME", 26: "CAP_SYS_TTY_CONFIG", 27: "CAP_MKNOD", 28: "CAP_LEASE",
    29: "CAP_AUDIT_WRITE", 30: "CAP_AUDIT_CONTROL", 31: "CAP_SETFCAP", 32: "CAP_MAC_OVERRIDE",
    33: "CAP_MAC_ADMIN", 34: "CAP_SYSLOG", 35: "CAP_WAKE_ALARM", 36: "CAP_BLOCK_SUSPEND", 37: "CAP_AUDIT_READ",
    38: "CAP_PERFMON", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE",
}
ESSENTIAL_CAPS = (21, 12)
"""CAP_SYS_ADMIN (overlay mounts, cgroups, /proc/sys) and CAP_NET_ADMIN (iptables, network sysctls):
what containerd and k3s cannot run without, and what Docker's default set lacks. A set that misses
only others (some hosts drop CAP_SYS_RESOURCE even under --privileged) is reported, not raised."""
DEFAULT_LAST_CAP = 37
"""CAP_AUDIT_READ, the last capability of every kernel since 3.16, when cap_last_cap is unreadable."""


def judged_mask(caps: Capabilities) -> int:
    """The set that says what the container was started with: ``CapEff``, or ``CapBnd`` when the
    listener runs as a non-root user (its effective set is then empty whatever the container has)."""
    if caps.effective == 0 and caps.bounding:
        return caps.bounding
    return caps.effective


def missing_capabilities(caps: Capabilities) -> tuple[int, ...]:
    """Capability numbers below the kernel's last one that the judged set lacks."""
    mask = judged_mask(caps)
    last = caps.last_cap if caps.last_cap is not None else DEFAULT_LAST_CAP
    return tuple(n for n in range(last + 1) if not mask >> n & 1)


def is_privileged(caps: Capabilities) -> bool:
    """The full set: what ``docker run --privileged`` gives."""
    return not missing_capabilities(caps)


def lacks_essentials(caps: Capabilities) -> bool:
    """Started without ``--privileged`` as far as the allinone is concerned."""
    mask = judged_mask(caps)
    return any(not mask >> n & 1 for n in ESSENTIAL_CAPS)


def capability_evidence(caps: Capabilities) -> list[str]:
    mask = judged_mask(caps)
    which = "CapEff" if mask == caps.effective else "CapBnd"
    missing = missing_capabilities(caps)
    names = [CAP_NAMES.get(n, f"cap {n}") for n in missing]
    essential = [CAP_NAMES[n] for n in ESSENTIAL_CAPS if n in missing]
    lines = [f"/proc/self/status {which}: {mask:016x} ({len(missing)} capabilities missing; --privileged gives all)"]
    if essential:
        lines.append(f"missing and needed by containerd and k3s: {', '.join(essential)}")
    if names:
        lines.append(f"missing: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}")
    return lines


def privilege_findings(rules: RuleBook, sample: HostSample) -> list[Finding]:
    """``host.not-privileged`` (error) when the container lacks what ``--privileged`` gives and
    containerd and k3s need; nothing when the capabilities could not be read."""
    caps = sample.capabilities
    if caps is None or not lacks_essentials(caps):
        return []
    return [
        rules.finding(
            NOT_PRIVILEGED_ID,
            PRIVILEGED_SUBJECT,
            evidence=capability_evidence(caps),
            source="host:/proc/self/status",
            scope=SCOPE,
        )
    ]


# ----------------------------------------------------------------------------- one line, several causes

_MOUNT_DENIED = re.compile(r"(?i)\bmount\b.*operation not permitted")
_SYSCTL_DENIED = re.compile(
    r"(?i)(?:/proc/sys/\S+|\bsysctl\b).*(?:operation not permitted|permission denied|read-only file system)"
)
MOUNT_FALLBACK = {BIND_MOUNT_ID: "images.load-failed"}
"""A mount denial raised as the host-share problem, when the data folder is no host share: the load failure."""


def with_host_facts(
    rules: RuleBook, findings: Sequence[Finding], sample: HostSample | None, hs: HostSettings
) -> list[Finding]:
    """Log findings whose line has several causes, decided with what the host check knows.

    A mount or sysctl "operation not permitted" (or a read-only ``/proc/sys``) is:
    ``host.not-privileged`` in a container without ``--privileged``; for a mount,
    ``images.bind-mount-storage`` when the data folder is a Docker Desktop share, and the load
    failure (``images.load-failed``) otherwise; a sysctl keeps its own rule's id otherwise.
    Without a sample (not read yet) every finding stays as the rules made it. Evidence is kept;
    the host fact that decided is added to it.
    """
    if sample is None:
        return list(findings)
    out: list[Finding] = []
    for f in findings:
        out.append(_decide(rules, f, sample, hs) if not f.id.startswith("host.") else f)
    return out


def _decide(rules: RuleBook, f: Finding, sample: HostSample, hs: HostSettings) -> Finding:
    mount = any(_MOUNT_DENIED.search(line) for line in f.evidence)
    sysctl = not mount and any(_SYSCTL_DENIED.search(line) for line in f.evidence)
    if not (mount or sysctl):
        return f
    caps = sample.capabilities
    if caps is not None and lacks_essentials(caps):
        return _as(rules, f, NOT_PRIVILEGED_ID, capability_evidence(caps), component="host")
    if not mount:
        return f
    data = mount_of(hs.data_dir, sample.mounts)
    if data is not None and is_host_share(data):
        note = f"{hs.data_dir} is on {data.source or '?'} mounted at {data.mountpoint} (type {data.fstype})"
        return _as(rules, f, BIND_MOUNT_ID, [note], component="images")
    fallback = MOUNT_FALLBACK.get(f.id)
    if fallback is None or fallback not in _known_ids(rules):
        return f
    note = f"{hs.data_dir} is on {data.fstype if data else 'an unknown filesystem'}, not a host share; privileged"
    return _as(rules, f, fallback, [note], component="images")


def _as(rules: RuleBook, f: Finding, problem_id: str, facts: list[str], component: str) -> Finding:
    if f.id == problem_id:
        return dataclasses.replace(f, evidence=bound_evidence([*f.evidence, *facts]))
    return rules.finding(
        problem_id,
        f.subject,
        evidence=[*f.evidence, *facts],
        source=f.source,
        scope=f.scope,
        component=component,
        details={"program": f.subject},
    )


def host_findings(
    rules: RuleBook, sample: HostSample, hs: HostSettings, load_failure: Sequence[str] | None = None
) -> list[Finding]:
    """Every host finding of one sample (the scope's complete current set)."""
    disks = disk_findings(rules, sample, hs)
    short = {f.subject for f in disks}
    # A path already low or full needs no "small" note as well.
    resources = [f for f in resource_findings(rules, sample, hs) if not (f.id == "host.disk-small" and f.subject in short)]
    privileges = privilege_findings(rules, sample)
    return [*disks, *privileges, *storage_findings(rules, sample, hs, load_failure), *resources]
