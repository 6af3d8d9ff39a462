"""Host checks: free space and inodes, the init script's minimums, Docker Desktop host shares."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.helpers import state_frame, tick_frame
from tests.test_app import Clock, envelope, feed, status
from watchdog.app import Monitor
from watchdog.config import HostSettings, Settings
from watchdog.diagnosis.host import HOST_SHARE_FSTYPES, host_findings, mount_of
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import HostSample, Mount, PathUsage, Severity
from watchdog.sources.host import HostReader, memory_limit_bytes, parse_mounts

GIB = 2**30
HS = HostSettings(paths=("/app/data", "/app/logs"))
DOCKER_MOUNTS = (Mount("/", "overlay", "overlay"), Mount("/app/data", "ext4", "/dev/sda1"))
HEALTHY = HostSample(
    paths={"/app/data": PathUsage(200 * GIB, 60.0, 80.0), "/app/logs": PathUsage(200 * GIB, 60.0, 80.0)},
    memory_bytes=16 * GIB,
    cpus=8,
    mounts=DOCKER_MOUNTS,
)


def ids(findings: list) -> dict[tuple[str, str], Severity]:
    return {(f.id, f.subject): f.severity for f in findings}


def with_data(usage: PathUsage, **kw: object) -> HostSample:
    return dataclasses.replace(HEALTHY, paths={**HEALTHY.paths, "/app/data": usage}, **kw)


def test_healthy_host_has_no_findings(rulebook: RuleBook) -> None:
    """Plenty of space, memory and CPUs on Docker's own storage: nothing to say."""
    assert host_findings(rulebook, HEALTHY, HS) == []


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (PathUsage(60 * GIB, 14.0, 80.0), "host.disk-low"),  # below the kubelet's imagefs 15%
        (PathUsage(60 * GIB, 50.0, 4.0), "host.disk-low"),  # inodes below 5%
        (PathUsage(1 * GIB, 1.5, 80.0), "host.disk-full"),  # below disk_full_percent
        (PathUsage(60 * GIB, 50.0, 1.0), "host.disk-full"),  # inodes exhausted
    ],
)
def test_space_and_inode_thresholds(rulebook: RuleBook, usage: PathUsage, expected: str) -> None:
    """Below the eviction thresholds is a warning; nearly full (space or inodes) an error."""
    found = ids(host_findings(rulebook, with_data(usage), HS))
    assert ("host.disk-low", "/app/data") in found or ("host.disk-full", "/app/data") in found
    assert (expected, "/app/data") in found
    assert found[(expected, "/app/data")] is (Severity.ERROR if expected == "host.disk-full" else Severity.WARNING)
    assert len([k for k in found if k[0].startswith("host.disk-")]) == 1


def test_disk_finding_carries_numbers_and_source(rulebook: RuleBook) -> None:
    (f,) = [f for f in host_findings(rulebook, with_data(PathUsage(3 * GIB, 10.0, 50.0)), HS) if f.id == "host.disk-low"]
    assert f.source == "host:/app/data" and f.scope == "host"
    assert "3.0 GiB" in f.summary.en and "10.0%" in f.summary.en
    assert any("3.0 GiB free" in e for e in f.evidence)


def test_paths_on_one_filesystem_are_reported_once(rulebook: RuleBook) -> None:
    """/app/data and /app/data/k3s on the same disk: one problem, about the first watched path."""
    low = PathUsage(1 * GIB, 1.0, 50.0)
    sample = HostSample(paths={"/app/data": low, "/app/data/k3s": low}, mounts=DOCKER_MOUNTS)
    found = ids(host_findings(rulebook, sample, dataclasses.replace(HS, paths=("/app/data", "/app/data/k3s"))))
    assert list(found) == [("host.disk-full", "/app/data")]


def test_init_script_minimums_are_info(rulebook: RuleBook) -> None:
    """Under 2048 MB memory, 2 CPUs, 50 GB free: info, as the image's script only warns."""
    sample = with_data(PathUsage(20 * GIB, 40.0, 80.0), memory_bytes=1024 * 2**20, cpus=1)
    found = ids(host_findings(rulebook, sample, HS))
    assert found == {
        ("host.memory-low", "memory"): Severity.INFO,
        ("host.cpu-few", "cpu"): Severity.INFO,
        ("host.disk-small", "/app/data"): Severity.INFO,
    }


@pytest.mark.parametrize("fstype", sorted(HOST_SHARE_FSTYPES))
def test_host_share_under_data_is_a_warning_at_once(rulebook: RuleBook, fstype: str) -> None:
    """-v local:/app/data on Docker Desktop: images.bind-mount-storage before anything fails."""
    sample = dataclasses.replace(HEALTHY, mounts=(Mount("/", "overlay"), Mount("/app/data", fstype, "/run/host_mark/Users")))
    (f,) = host_findings(rulebook, sample, HS)
    assert (f.id, f.subject, f.severity, f.component) == ("images.bind-mount-storage", "/app/data", Severity.WARNING, "images")
    assert fstype in f.summary.en and any(fstype in e for e in f.evidence)


def test_host_share_becomes_an_error_when_image_loading_fails(rulebook: RuleBook) -> None:
    sample = dataclasses.replace(HEALTHY, mounts=(Mount("/", "overlay"), Mount("/app", "fakeowner")))
    load_evidence = ['level=fatal msg="failed to extract layer sha256:abc: failed to mount: operation not permitted"']
    (f,) = host_findings(rulebook, sample, HS, load_failure=load_evidence)
    assert (f.id, f.severity) == ("images.bind-mount-storage", Severity.ERROR)
    assert load_evidence[0] in f.evidence


def test_docker_volume_is_not_a_host_share(rulebook: RuleBook) -> None:
    for fstype in ("ext4", "xfs", "overlay", "btrfs"):
        sample = dataclasses.replace(HEALTHY, mounts=(Mount("/", "overlay"), Mount("/app/data", fstype)))
        assert host_findings(rulebook, sample, HS) == []


def test_mount_of_picks_the_longest_and_latest_mount_point() -> None:
    mounts = (Mount("/", "overlay"), Mount("/app", "ext4"), Mount("/app/data", "tmpfs"), Mount("/app/data", "fakeowner"),
              Mount("/app/database", "xfs"))
    assert mount_of("/app/data", mounts) == Mount("/app/data", "fakeowner")
    assert mount_of("/app/data/k3s/", mounts) == Mount("/app/data", "fakeowner")
    assert mount_of("/app/datab", mounts) == Mount("/app", "ext4")
    assert mount_of("/etc", mounts) == Mount("/", "overlay")
    assert mount_of("/etc", ()) is None


def test_parse_mounts_reads_proc_mounts_with_escapes() -> None:
    text = (
        "overlay / overlay rw,relatime,lowerdir=/x 0 0\n"
        "/run/host_mark/Users /app/data fakeowner rw,nosuid 0 0\n"
        "C:\\134 /mnt/my\\040data 9p rw,aname=drvfs 0 0\n"
        "garbage\n"
    )
    assert parse_mounts(text) == (
        Mount("/", "overlay", "overlay"),
        Mount("/app/data", "fakeowner", "/run/host_mark/Users"),
        Mount("/mnt/my data", "9p", "C:\\"),
    )


def test_reader_measures_existing_paths_and_reads_the_injected_mount_table(tmp_path: Path) -> None:
    """Real statvfs and psutil; the mount table and cgroup files come from the injected reader."""
    files = {"/proc/self/mounts": f"/dev/x {tmp_path} grpcfuse rw 0 0\n", "/sys/fs/cgroup/memory.max": "max\n"}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    sample = HostReader(read).sample([str(tmp_path), str(tmp_path / "absent")])
    assert list(sample.paths) == [str(tmp_path)]
    u = sample.paths[str(tmp_path)]
    assert u.free_bytes > 0 and 0 < u.free_percent <= 100
    assert sample.mounts == (Mount(str(tmp_path), "grpcfuse", "/dev/x"),)
    assert sample.memory_bytes and sample.memory_bytes > 0 and sample.cpus and sample.cpus >= 1


def test_reader_says_why_the_mount_table_is_missing(tmp_path: Path) -> None:
    def read(path: str) -> str:
        raise PermissionError(13, "Permission denied")

    sample = HostReader(read).sample([str(tmp_path)])
    assert sample.mounts == () and any("mount table" in n for n in sample.notes)


def test_cgroup_memory_limit_is_used_when_set() -> None:
    assert memory_limit_bytes(lambda p: "1073741824\n") == 1 << 30
    assert memory_limit_bytes(lambda p: "max\n") is None
    assert memory_limit_bytes(lambda p: "9223372036854771712\n") is None


# ----------------------------------------------------------------------------- in the Monitor


def host_settings(settings: Settings, data: Path) -> Settings:
    return dataclasses.replace(settings, host=dataclasses.replace(settings.host, paths=(str(data),), data_dir=str(data)))


def test_monitor_samples_host_off_the_event_path_and_fills_components_host(
    settings: Settings, rulebook: RuleBook, tmp_path: Path
) -> None:
    """The sample runs in a background task; its result lands at the next tick."""
    data = str(tmp_path / "data")
    s = host_settings(settings, tmp_path / "data")
    sample = HostSample(paths={data: PathUsage(2 * GIB, 5.0, 50.0)}, memory_bytes=8 * GIB, cpus=4,
                        mounts=(Mount("/", "overlay"),))
    clock = Clock()
    mon = Monitor(s, rulebook, clock=clock, host_sampler=lambda: sample, console_prober=None)
    feed(mon, tick_frame(1, 1))
    assert mon.wait_background(10)
    clock.t += 5
    feed(mon, tick_frame(2, 2))
    doc = status(s)
    assert doc["components"]["host"]["paths"][data]["free_bytes"] == 2 * GIB
    assert [(p["id"], p["subject"]) for p in doc["problems"]] == [("host.disk-low", data)]
    assert doc["problems"][0]["source"] == f"host:{data}"


def test_host_problem_resolves_when_space_is_free_again(settings: Settings, rulebook: RuleBook, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    s = host_settings(settings, tmp_path / "data")
    samples = [HostSample(paths={data: PathUsage(1 * GIB, 1.0, 50.0)}), HostSample(paths={data: PathUsage(90 * GIB, 45.0, 50.0)})]
    clock = Clock()
    mon = Monitor(s, rulebook, clock=clock, host_sampler=lambda: samples[0] if clock.t < 1_790_000_100 else samples[1])
    feed(mon, tick_frame(1, 1))
    mon.wait_background(10)
    clock.t += 5
    feed(mon, tick_frame(2, 2))
    assert ("host.disk-full", data) in mon.book.active
    clock.t += 200
    with capture_logs() as logs:
        feed(mon, tick_frame(3, 3))
        mon.wait_background(10)
        clock.t += 5
        feed(mon, tick_frame(4, 4))
    assert ("host.disk-full", data) not in mon.book.active
    assert [e["id"] for e in logs if e["event"] == "problem_resolved"] == ["host.disk-full"]


def test_bind_mount_warning_escalates_when_the_init_program_reports_a_load_failure(
    settings: Settings, rulebook: RuleBook, tmp_path: Path
) -> None:
    """Warning at once; the init program's `nerdctl load` failure makes it an error, with one line."""
    data = str(tmp_path / "data")
    s = host_settings(settings, tmp_path / "data")
    sample = HostSample(paths={data: PathUsage(90 * GIB, 45.0, 50.0)}, mounts=(Mount("/", "overlay"), Mount(data, "fakeowner")))
    clock = Clock()
    mon = Monitor(s, rulebook, clock=clock, host_sampler=lambda: sample)
    feed(mon, tick_frame(1, 1))
    mon.wait_background(10)
    clock.t += 5
    feed(mon, tick_frame(2, 2))
    key = ("images.bind-mount-storage", data)
    assert mon.book.active[key].finding.severity is Severity.WARNING
    assert status(s)["overall"] == "degraded"
    line = 'time="2022-10-25T11:00:45+08:00" level=fatal msg="failed to ingest \\"0ef0/layer.tar\\": commit failed: failed precondition"'
    log_frame = (f"processname:init groupname:init pid:42 channel:stdout\n{line}\n")
    with capture_logs() as logs:
        from tests.helpers import frame

        feed(mon, frame("PROCESS_LOG_STDOUT", log_frame, 3))
        assert ("images.load-failed", "init") in mon.book.active
        clock.t += 5
        feed(mon, tick_frame(3, 4))
    assert mon.book.active[key].finding.severity is Severity.ERROR
    assert mon.book.active[key].count == 2  # the same problem, counted, not raised again
    assert [e["event"] for e in logs if e.get("id") == "images.bind-mount-storage"] == ["problem_escalated"]
    assert status(s)["overall"] == "failed"


def test_hung_host_check_is_reported_once_and_never_blocks_events(
    settings: Settings, rulebook: RuleBook, tmp_path: Path
) -> None:
    """A statvfs that never returns (hung NFS) keeps its thread; events are still answered at once."""
    import threading

    release = threading.Event()

    def hung() -> HostSample:
        release.wait(30)
        return HostSample()

    clock = Clock()
    mon = Monitor(host_settings(settings, tmp_path), rulebook, clock=clock, host_sampler=hung)
    try:
        with capture_logs() as logs:
            for i in range(10):
                feed(mon, tick_frame(i, i + 1), state_frame("RUNNING", "containerd", "STARTING", 100 + i))
                clock.t += 5
        assert [e["event"] for e in logs].count("host_check_hung") == 1
    finally:
        release.set()
        mon.wait_background(10)


def test_event_before_any_sample_leaves_host_empty(settings: Settings, rulebook: RuleBook) -> None:
    mon = Monitor(settings, rulebook, clock=Clock(), host_sampler=lambda: HostSample())
    mon.handle(envelope(state_frame("RUNNING", "containerd", "STARTING", 1)))
    assert status(settings)["components"]["host"] == {"paths": {}}
