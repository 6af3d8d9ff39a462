"""Settings: TOML → frozen dataclasses, in three steps: parse, fill defaults, validate.

The dataclass field defaults below are the promised defaults (``conf/watchdog.toml`` documents
the same values and a test pins them). A config file may set only some keys; a bad file stops
the program at start with a ``ConfigError`` naming the file, the key and the reason.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from watchdog.model import LAYOUTS

ENV_CONFIG = "RAINBOND_WATCHDOG_CONFIG"


class ConfigError(Exception):
    """A configuration or rule file that cannot be used; the message names file, key, reason."""


@dataclass(frozen=True)
class ProgramSettings:
    program: str
    """supervisord program name."""
    logs: tuple[str, ...]
    """Log files, relative to ``log_dir`` unless absolute."""
    deadline_seconds: float = 300.0
    """How long the phase may take before ``phase.stuck``."""


def _default_programs() -> dict[str, ProgramSettings]:
    return {
        "containerd": ProgramSettings("containerd", ("containerd.log",), 65.0),
        "k3s": ProgramSettings("k3s", ("k3s.log",), 260.0),
        "console": ProgramSettings("console", ("console.log", "console_error.log"), 600.0),
    }


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: str = "/etc/rancher/k3s/k3s.yaml"
    """The k3s kubeconfig in the image (also linked at /root/.kube/config)."""
    namespace: str = "rbd-system"
    expected_pods: tuple[str, ...] = (
        "rbd-etcd", "rainbond-operator", "rbd-gateway", "rbd-hub", "rbd-node", "rbd-webcli",
        "rbd-mq", "rbd-monitor", "rbd-resource-proxy", "rbd-db", "rbd-chaos", "rbd-worker",
        "rbd-eventlog", "rbd-api",
    )
    """Name prefixes of pods that must exist and be ready (the region's pods in the seed)."""
    poll_seconds: float = 15.0
    """Seconds between polls; a healthy poll is two requests."""
    timeout_seconds: float = 5.0
    """Connect and read timeout of one request: the API may hang, the listener must not."""
    api_grace_seconds: float = 120.0
    """How long k3s may be RUNNING before an unreachable API is a problem."""
    pod_start_grace_seconds: float = 300.0
    """Pods younger than this are not yet judged Pending / not ready."""
    not_ready_seconds: float = 300.0
    """Running but not ready for longer than this is ``region.pod-not-ready``."""
    max_detail_pods: int = 5
    """At most this many unhealthy pods get events and logs fetched per poll."""
    log_tail_lines: int = 20
    """Lines of the previous container's log taken as evidence."""
    crashloop_restarts: int = 3
    """This many restarts of a container within ``restart_window_seconds`` is a crash loop, even
    while it is briefly Running between two crashes (restarts are counted in the window, not
    since the pod was created)."""
    restart_window_seconds: float = 600.0
    """The window restarts are counted in (kubelet's crash back-off reaches 5 minutes)."""


@dataclass(frozen=True)
class HostSettings:
    paths: tuple[str, ...] = ("/app/data", "/app/logs", "/app/data/containerd", "/app/data/k3s")
    """Watched paths (those that do not exist are skipped)."""
    disk_low_percent: float = 15.0
    """Free space below this is ``host.disk-low`` (kubelet imagefs.available hard eviction: 15%)."""
    disk_full_percent: float = 2.0
    """Free space below this is ``host.disk-full``."""
    inodes_low_percent: float = 5.0
    """Free inodes below this is ``host.disk-low`` (kubelet nodefs.inodesFree: 5%).
    Free space or inodes below ``disk_full_percent`` is ``host.disk-full``."""
    poll_seconds: float = 30.0
    """Seconds between host checks (run in a background thread: statvfs on a hung NFS blocks)."""
    timeout_seconds: float = 10.0
    """A host check still running after this long is reported once as hung."""
    data_dir: str = "/app/data"
    """The data folder: on a Docker Desktop host share (``-v local:/app/data``) images fail to load."""
    min_memory_mb: int = 2048
    """Less memory than this is ``host.memory-low`` (info; the image's init script warns under 2048 MB)."""
    min_cpus: int = 2
    """Fewer CPUs than this is ``host.cpu-few`` (info; the init script warns under 2)."""
    min_free_disk_mb: int = 51200
    """Less free space than this under ``data_dir`` is ``host.disk-small`` (info; the script warns under 50 GB)."""


@dataclass(frozen=True)
class ConsoleSettings:
    """The console's HTTP probe (``console.unreachable``), as the init script's ``curl http://127.0.0.1:7070``."""

    probe: bool = True
    """Probe the console's HTTP port once it is RUNNING; false: RUNNING alone counts as answering."""
    host: str = "127.0.0.1"
    port: int = 7070
    path: str = "/"
    timeout_seconds: float = 3.0
    """Connect and read timeout of one probe."""
    poll_seconds: float = 15.0
    """Seconds between probes."""
    grace_seconds: float = 120.0
    """How long the console may be RUNNING without answering before ``console.unreachable``."""


@dataclass(frozen=True)
class PhaseSettings:
    """Deadlines of the phases the image's script waits on forever (containerd, k3s and the console
    have theirs in ``programs.*.deadline_seconds``)."""

    images_deadline_seconds: float = 900.0
    """Loading the platform's images (several GB through ``nerdctl load``) from containerd RUNNING."""
    region_deadline_seconds: float = 900.0
    """The region's pods all ready, from k3s RUNNING (the images are already local)."""


@dataclass(frozen=True)
class Settings:
    status_file: str = "/app/status/diagnosis.json"
    log_dir: str = "/app/logs"
    language: str = "zh,en"
    """Languages of the human text, in order; the status file always carries both."""
    alert_format: str = "text"
    """stderr (→ ``docker logs``): ``text``, lines for a person in the init script's style, the
    watchdog's own bookkeeping only from warning up; ``json``, every event as one JSON line
    (log shippers)."""
    alert_color: str = "auto"
    """Colours of the text lines, as the init script's: ``auto`` (only on a terminal, not with
    ``$NO_COLOR``), ``always`` (as ``docker logs`` shows the init script's), ``never``."""
    layout: str = "auto"
    """The image layout: ``auto`` (from the programs supervisord has: ``docker`` is dockerd,
    ``containerd`` is containerd, neither is embedded), or ``dockerd``, ``containerd``, ``embedded``."""
    programs: Mapping[str, ProgramSettings] = field(default_factory=_default_programs)
    kubernetes: KubeSettings = field(default_factory=KubeSettings)
    host: HostSettings = field(default_factory=HostSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    phases: PhaseSettings = field(default_factory=PhaseSettings)
    rules: tuple[str, ...] = ("rules.toml", "region_rules.toml", "region_dependencies.toml")
    """Rule files; relative paths resolve against the packaged conf/ first, then the config's folder."""
    resolve_after_seconds: float = 60.0
    """A process problem resolves once the program has stayed RUNNING this long."""
    stale_seconds: float = 180.0
    """``status`` calls a status file older than this stale (the listener writes every 60 s)."""
    heartbeat_seconds: float = 60.0
    """The status file is rewritten at least this often."""
    tail_bytes: int = 65536
    """At most this much of the end of a log is read on a failure."""
    tail_lines: int = 200
    """At most this many lines of that end are kept."""
    flap_restarts: int = 5
    """This many starts within ``flap_window_seconds`` is ``process.flapping``."""
    flap_window_seconds: float = 120.0
    rpc_timeout_seconds: float = 2.0
    """Timeout of one XML-RPC call to supervisord."""
    supervisor_url: str = "unix:///var/run/supervisor.sock"
    """supervisord's XML-RPC address for ``diagnose`` (run by ``docker exec``, outside supervisord);
    ``$SUPERVISOR_SERVER_URL`` wins when set. The listener always uses the environment."""
    supervisor_len_unit: str = "auto"
    """What the event header's ``len`` counts: ``bytes`` (supervisord on Python 2, the image's
    3.3.1), ``characters`` (supervisord 4 on Python 3) or ``auto`` (decided once at start from
    supervisord's interpreter, else its version over XML-RPC)."""
    config_path: str = ""
    """Where these settings came from (filled in by the loader)."""

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.language.split(",") if x.strip())

    def log_path(self, name: str) -> str:
        return name if os.path.isabs(name) else os.path.join(self.log_dir, name)


def packaged_conf_dir() -> Path:
    """The conf/ folder: installed as ``watchdog.conf`` or, in a source tree, beside the package."""
    try:
        path = Path(str(resources.files("watchdog.conf")))
        if (path / "watchdog.toml").is_file():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "conf"


def default_config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else packaged_conf_dir() / "watchdog.toml"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read a config file (or the default one) and return validated settings."""
    file = Path(path) if path else default_config_path()
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as e:
        raise ConfigError(f"{file}: cannot read config: file not found") from e
    except OSError as e:
        raise ConfigError(f"{file}: cannot read config: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: not UTF-8 text") from e
    return settings_from_dict(data, source=str(file))


def settings_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Settings:
    settings: Settings = _build(Settings, data, source, "")
    settings = dataclasses.replace(settings, config_path=source)
    _validate(settings, source)
    return settings


def _build(cls: type[Any], data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or '(top)'}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "config_path"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: {prefix}{unknown[0]}: unknown key")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], source, prefix + f.name, f)
    try:
        return cls(**kwargs)
    except TypeError as e:
        missing = str(e).split("argument")[-1].strip(": '")
        raise ConfigError(f"{source}: {prefix}{missing}: required key missing") from e


def _convert(tp: Any, value: Any, source: str, key: str, f: dataclasses.Field[Any]) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, source, key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: expected a string, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
        return float(value)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a list, got {value!r}")
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return tuple(_convert(item, v, source, f"{key}[{i}]", f) for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key}: expected a table")
        _, vtype = typing.get_args(tp)
        defaults: Mapping[str, Any] = f.default_factory() if f.default_factory is not dataclasses.MISSING else {}
        out = dict(defaults)
        for name, sub in value.items():
            if name in defaults and dataclasses.is_dataclass(vtype) and isinstance(sub, Mapping):
                # A partial table keeps the defaults of the keys it does not set.
                base = {k.name: getattr(defaults[name], k.name) for k in dataclasses.fields(vtype)}
                base = {k: list(v) if isinstance(v, tuple) else v for k, v in base.items()}
                sub = {**base, **sub}
            out[name] = _convert(vtype, sub, source, f"{key}.{name}", f)
        return out
    raise ConfigError(f"{source}: {key}: unsupported setting type {tp}")  # pragma: no cover


def _validate(s: Settings, source: str) -> None:
    def bad(key: str, reason: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {reason}")

    langs = s.languages
    if not langs or any(x not in ("zh", "en") for x in langs):
        raise bad("language", f"must list zh and/or en, got {s.language!r}")
    if not s.status_file:
        raise bad("status_file", "must not be empty")
    if s.alert_format not in ("text", "json"):
        raise bad("alert_format", f"must be text or json, got {s.alert_format!r}")
    if s.alert_color not in ("auto", "always", "never"):
        raise bad("alert_color", f"must be auto, always or never, got {s.alert_color!r}")
    if s.supervisor_len_unit not in ("auto", "bytes", "characters"):
        raise bad("supervisor_len_unit", f"must be auto, bytes or characters, got {s.supervisor_len_unit!r}")
    if s.layout not in ("auto", *LAYOUTS):
        raise bad("layout", f"must be one of auto, {', '.join(LAYOUTS)}, got {s.layout!r}")
    for name in ("containerd", "k3s", "console"):
        if name not in s.programs:
            raise bad(f"programs.{name}", "missing")
    extra = sorted(set(s.programs) - {"containerd", "k3s", "console"})
    if extra:
        raise bad(f"programs.{extra[0]}", "unknown program (one of containerd, k3s, console)")
    for name, p in s.programs.items():
        if not p.program:
            raise bad(f"programs.{name}.program", "must not be empty")
    positive = {
        "resolve_after_seconds": s.resolve_after_seconds,
        "stale_seconds": s.stale_seconds,
        "heartbeat_seconds": s.heartbeat_seconds,
        "tail_bytes": s.tail_bytes,
        "tail_lines": s.tail_lines,
        "flap_restarts": s.flap_restarts,
        "flap_window_seconds": s.flap_window_seconds,
        "rpc_timeout_seconds": s.rpc_timeout_seconds,
        "kubernetes.poll_seconds": s.kubernetes.poll_seconds,
        "kubernetes.timeout_seconds": s.kubernetes.timeout_seconds,
        "kubernetes.max_detail_pods": s.kubernetes.max_detail_pods,
        "kubernetes.log_tail_lines": s.kubernetes.log_tail_lines,
        "kubernetes.crashloop_restarts": s.kubernetes.crashloop_restarts,
        "kubernetes.restart_window_seconds": s.kubernetes.restart_window_seconds,
        "host.poll_seconds": s.host.poll_seconds,
        "host.timeout_seconds": s.host.timeout_seconds,
        "console.timeout_seconds": s.console.timeout_seconds,
        "console.poll_seconds": s.console.poll_seconds,
        "console.grace_seconds": s.console.grace_seconds,
        "phases.images_deadline_seconds": s.phases.images_deadline_seconds,
        "phases.region_deadline_seconds": s.phases.region_deadline_seconds,
        **{f"programs.{n}.deadline_seconds": p.deadline_seconds for n, p in s.programs.items()},
    }
    for key, value in positive.items():
        if value <= 0:
            raise bad(key, f"must be greater than 0, got {value}")
    for key in ("disk_low_percent", "disk_full_percent", "inodes_low_percent"):
        value = getattr(s.host, key)
        if not 0 <= value <= 100:
            raise bad(f"host.{key}", f"must be a percentage from 0 to 100, got {value}")
    if s.host.disk_full_percent > s.host.disk_low_percent:
        raise bad("host.disk_full_percent", "must not be above host.disk_low_percent")
    if s.host.disk_full_percent > s.host.inodes_low_percent:
        raise bad("host.disk_full_percent", "must not be above host.inodes_low_percent")
    for key in ("min_memory_mb", "min_cpus", "min_free_disk_mb"):
        if getattr(s.host, key) < 0:
            raise bad(f"host.{key}", f"must not be negative, got {getattr(s.host, key)}")
    if not s.host.data_dir:
        raise bad("host.data_dir", "must not be empty")
    if not 1 <= s.console.port <= 65535:
        raise bad("console.port", f"must be a TCP port from 1 to 65535, got {s.console.port}")
    if not s.console.host:
        raise bad("console.host", "must not be empty")
    if not s.console.path.startswith("/"):
        raise bad("console.path", f"must start with /, got {s.console.path!r}")
    if not s.kubernetes.namespace:
        raise bad("kubernetes.namespace", "must not be empty")


CATALOG_FILE = "problems.toml"
"""The packaged catalog of problems raised by checks; loaded before every rule file."""


def rule_paths(settings: Settings) -> list[Path]:
    """The catalog, then the rule files in force: relative names from the packaged conf/, else beside the config."""
    out: list[Path] = [packaged_conf_dir() / CATALOG_FILE]
    config_dir = Path(settings.config_path).parent if settings.config_path else Path.cwd()
    for i, name in enumerate(settings.rules):
        p = Path(name)
        if not p.is_absolute():
            packaged = packaged_conf_dir() / p
            p = packaged if packaged.is_file() else config_dir / p
        if not p.is_file():
            raise ConfigError(f"{settings.config_path or '<config>'}: rules[{i}]: rule file {p} not found")
        out.append(p)
    return out
