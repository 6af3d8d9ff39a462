"""The log rules as data: every shipped file loads, examples are precise, bad files are refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.config import ConfigError, packaged_conf_dir
from watchdog.diagnosis.rules import RuleBook, load_rule_file, load_rule_files
from watchdog.model import Severity

CONF = packaged_conf_dir()
SHIPPED = [CONF / "problems.toml", CONF / "rules.toml"]

CONTRACT_LOG_IDS = {
    "containerd.config-invalid",
    "containerd.socket-in-use",
    "images.load-failed",
    "images.bind-mount-storage",
    "k3s.cgroupv2-unsupported",
    "k3s.conntrack-permission-denied",
    "k3s.port-in-use",
    "host.disk-full",
}
SEED_IDS = {"k3s.cgroupv2-unsupported", "k3s.conntrack-permission-denied", "host.disk-full"}

# Real-looking lines (not the rules' own examples) and the id each must raise, nothing else.
RECOGNISED = [
    ("containerd: failed to load TOML: /etc/containerd/config.toml: (12, 1): duplicated tables", "containerd.config-invalid"),
    ('containerd: failed to load TOML from /app/containerd.toml: invalid plugin key URI "grpc.v1.cri" expect io.containerd.x.vx',
     "containerd.config-invalid"),
    ("containerd: failed to get listener for main endpoint: is a directory", "containerd.socket-in-use"),
    ('time="2026-11-30T01:00:00Z" level=fatal msg="failed to ingest \\"7b1a/layer.tar\\": commit failed"', "images.load-failed"),
    ('time="2026-11-30T01:00:00Z" level=fatal msg="failed to extract layer sha256:aa: failed to mount '
     '/app/data/containerd/tmpmounts/containerd-mount11: operation not permitted: unknown"', "images.bind-mount-storage"),
    ('W1130 01:00:00.000000 59 kubelet.go:1431] "Failed to create cgroup" err="cannot enter cgroupv2 '
     '\\"/sys/fs/cgroup/kubepods/burstable\\" with domain controllers -- it is in an invalid state"', "k3s.cgroupv2-unsupported"),
    ('level=error msg="Failed to set sysctl: open /proc/sys/net/netfilter/nf_conntrack_max: permission denied"',
     "k3s.conntrack-permission-denied"),
    ('time="2026-11-30T01:00:00Z" level=fatal msg="starting kubernetes: preparing server: init cluster datastore and https: '
     'listen tcp :6443: bind: address already in use"', "k3s.port-in-use"),
    ("/usr/lib/libbz2.so.1.0.8: no space left on device", "host.disk-full"),
    ('level=fatal msg="failed to find memory cgroup (v2)"', "k3s.memory-cgroup-missing"),
    ('Error: failed to run Kubelet: failed to create kubelet: open /dev/kmsg: no such file or directory', "k3s.kmsg-missing"),
    ('level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"',
     "k3s.bootstrap-token-mismatch"),
    ("""django.db.utils.OperationalError: (2003, "Can't connect to MySQL server on 'rbd-db-rw' (111)")""",
     "console.db-unreachable"),
    ("""[2026-11-30 01:00:00 +0800] [7] [ERROR] Connection in use: ('0.0.0.0', 7070): Address already in use""",
     "console.port-in-use"),
]

# Lines from healthy systems that must raise nothing of severity error.
HEALTHY = [
    'time="2026-11-30T01:05:13.098314316Z" level=error msg="failed to load cni during init, please check CRI plugin status '
    'before setting up network for pods" error="cni config load failed: no network config found in /etc/cni/net.d: cni plugin '
    'not initialized: failed to load cni config"',
    'time="2026-11-30T01:05:13Z" level=info msg="skip loading plugin \\"io.containerd.snapshotter.v1.aufs\\"..." error="aufs is not '
    'supported (modprobe aufs failed: exec: \\"modprobe\\": executable file not found in $PATH \\"\\"): skip plugin"',
    'time="2026-11-30T01:05:13Z" level=warning msg="failed to load plugin io.containerd.snapshotter.v1.devmapper" error="devmapper '
    'not configured"',
    'E1222 10:54:52.719468 555128 kubelet.go:1478] "Image garbage collection failed once. Stats initialization may not have '
    'completed yet" err="invalid capacity 0 on image filesystem"',
    'time="2026-11-30T01:05:13Z" level=info msg="Running kube-proxy --conntrack-max-per-core=0 --proxy-mode=iptables"',
    'level=info msg="Set sysctl \'net/netfilter/nf_conntrack_max\' to 196608"',
]


@pytest.fixture(scope="module")
def shipped() -> RuleBook:
    return load_rule_files(SHIPPED)


def test_every_shipped_rule_file_loads() -> None:
    """Each shipped file passes the loader's validation on its own."""
    for path in SHIPPED:
        load_rule_file(path)


def test_every_example_matches_its_own_rule_and_no_other(shipped: RuleBook) -> None:
    """Examples are precise: an example line raises exactly its rule."""
    assert shipped.rules
    for rule in shipped.rules:
        for example in rule.examples:
            matched = [r.id for r in shipped.rules if r.matches(example)]
            assert matched == [rule.id], f"{rule.id}: {example!r} matched {matched}"


def test_catalog_covers_the_contract_ids_and_twelve_more(shipped: RuleBook) -> None:
    """Every contract id with log evidence has a rule, and the catalog goes beyond the seed."""
    ids = {r.id for r in shipped.rules}
    assert CONTRACT_LOG_IDS <= ids
    assert len(ids - CONTRACT_LOG_IDS - SEED_IDS) >= 12
    assert not ids & set(shipped.entries), "a rule id shadows a catalog entry"


def test_every_rule_has_both_languages_and_commands_in_backticks(shipped: RuleBook) -> None:
    for rule in shipped.rules:
        assert rule.summary.zh and rule.summary.en
        assert len(rule.remediation.zh) == len(rule.remediation.en), rule.id
        assert any("`" in step for step in rule.remediation.en), rule.id


@pytest.mark.parametrize(("line", "expected"), RECOGNISED, ids=[e for _, e in RECOGNISED])
def test_real_looking_line_is_recognised_as_its_problem(shipped: RuleBook, line: str, expected: str) -> None:
    assert [m.rule.id for m in shipped.match([line])] == [expected]


def test_healthy_lines_raise_nothing_of_severity_error(shipped: RuleBook) -> None:
    """Precision: containerd's cni warning at start and similar noise are not problems."""
    errors = [m.rule.id for m in shipped.match(HEALTHY) if m.rule.severity is Severity.ERROR]
    assert errors == []


def test_component_filter_keeps_its_rules_and_the_host_rules(shipped: RuleBook) -> None:
    console = {r.id for r in shipped.for_component("console")}
    assert "console.db-unreachable" in console and "host.disk-full" in console
    assert "k3s.port-in-use" not in console
    assert "containerd.overlayfs-unsupported" in {r.id for r in shipped.for_component("images")}


def test_fake_k3s_crash_is_port_in_use(shipped: RuleBook) -> None:
    """The simulated k3s crash scenario prints a bind error: it is k3s.port-in-use, not a generic failure."""
    from tests.allinone.fake_k3s import FAILURES, stamp

    lines = [stamp(x) for x in FAILURES["crash"]]
    assert "k3s.port-in-use" in [m.rule.id for m in shipped.match(lines, "k3s")]


# ----------------------------------------------------------------------------- the loader refuses bad files

GOOD = """
[[rule]]
id = "k3s.example"
component = "k3s"
severity = "error"
patterns = ['boom \\d+']
summary.zh = "爆炸"
summary.en = "Boom"
remediation.zh = ["`true`"]
remediation.en = ["`true`"]
examples = ["boom 42"]
"""


def _refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "operator.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rule_file(path)
    return str(err.value)


def test_good_operator_file_loads_and_overrides_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "operator.toml"
    path.write_text(GOOD)
    book = load_rule_files([*SHIPPED, path])
    assert book.rule("k3s.example") is not None
    assert book.rule("k3s.port-in-use") is not None


def test_operator_rule_with_a_shipped_id_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "operator.toml"
    path.write_text(GOOD.replace("k3s.example", "k3s.port-in-use"))
    book = load_rule_files([*SHIPPED, path])
    rule = book.rule("k3s.port-in-use")
    assert rule is not None and rule.summary.en == "Boom"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("patterns = ['boom \\d+']", "patterns = ['boom (']"), "bad regular expression"),
        (('summary.en = "Boom"\n', ""), "summary.en"),
        (('examples = ["boom 42"]', 'examples = ["bang 42"]'), "example does not match"),
        (('severity = "error"', 'severity = "fatal"'), "severity"),
        (('component = "k3s"', 'component = "k8s"'), "component"),
        (('remediation.en = ["`true`"]', "remediation.en = []"), "remediation.en"),
        (('examples = ["boom 42"]', "examples = []"), "examples"),
    ],
)
def test_bad_rule_is_refused_naming_file_rule_and_reason(tmp_path: Path, change: tuple[str, str], reason: str) -> None:
    old, new = change
    assert old in GOOD
    message = _refusal(tmp_path, GOOD.replace(old, new))
    assert "operator.toml" in message
    assert "k3s.example" in message
    assert reason in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    message = _refusal(tmp_path, GOOD + 'patern = "typo"\n')
    assert "operator.toml" in message and "k3s.example" in message and "patern" in message


def test_unknown_language_is_refused(tmp_path: Path) -> None:
    message = _refusal(tmp_path, GOOD.replace('summary.en = "Boom"', 'summary.en = "Boom"\nsummary.fr = "Boum"'))
    assert "k3s.example" in message and "summary.fr" in message


def test_not_toml_is_refused_with_the_file(tmp_path: Path) -> None:
    message = _refusal(tmp_path, "[[rule]\nid=")
    assert "operator.toml" in message and "TOML" in message


def test_duplicate_id_in_one_file_is_refused(tmp_path: Path) -> None:
    message = _refusal(tmp_path, GOOD + GOOD)
    assert "k3s.example" in message and "twice" in message


def test_the_component_screen_passes_every_example_and_drops_ordinary_lines(shipped: RuleBook) -> None:
    """``match`` passes over text without any anchor of a component's rules with one search: it
    must still find every example of every rule for each component the rule applies to, and
    give what the rule-by-rule scan gives."""
    components = sorted({c for r in shipped.rules for c in r.components} | {"images"})
    for component in components:
        screen = shipped.screen(component)
        for rule in shipped.for_component(component):
            for example in rule.examples:
                assert screen is None or screen.search(example.lower()), (component, rule.id, example)
                assert rule.id in [m.rule.id for m in shipped.match([example], component)]
    ordinary = ["rainbond init: waiting for region (5)", "Loaded image: goodrain.me/rbd-api:v5.17", ""]
    assert shipped.screen("images") is not None
    assert shipped.match(ordinary, "images") == []
