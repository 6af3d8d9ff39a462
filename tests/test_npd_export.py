"""The rules as Node Problem Detector configs: RE2 compilation, NPD's anchoring, the round trip on
every shipped rule's examples (whatever rules are loaded), and the CLI."""
from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import re2  # google-re2, a [test] dependency: the RE2 engine NPD's Go regexp follows
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.app import load_rulebook
from watchdog.cli import main
from watchdog.config import load_settings
from watchdog.diagnosis.rules import Rule, RuleBook
from watchdog.sinks.npd_export import SOURCES, export_npd, monitor_config, reason_of
from watchdog.sinks.npd_patterns import Untranslatable, npd_pattern, translate


def shipped_book() -> RuleBook:
    return load_rulebook(load_settings(None))


class NpdBuffer:
    """NPD's log buffer as pkg/systemlogmonitor/log_buffer.go has it: a ring of ``size`` messages,
    joined with "\\n" (empty slots included), matched with ``pattern + `\\z```."""

    def __init__(self, size: int) -> None:
        self.lines = [""] * size

    def push(self, line: str) -> None:
        self.lines = [*self.lines[1:], line]

    def matches(self, pattern: str, grouped: bool = False) -> bool:
        expr = f"(?:{pattern})\\z" if grouped else pattern + "\\z"
        return compiled(expr).search("\n".join(self.lines)) is not None


@cache
def compiled(expr: str) -> Any:
    return re2.compile(expr)


def npd_matches(pattern: str, line: str, before: tuple[str, ...] = (), size: int = 1) -> bool:
    buf = NpdBuffer(size)
    for earlier in before:
        buf.push(earlier)
    buf.push(line)
    return buf.matches(pattern)


def exported_rules(book: RuleBook) -> list[tuple[Rule, str]]:
    """(rule, exported pattern) for every rule that some source exports."""
    out: dict[str, tuple[Rule, str]] = {}
    for source in SOURCES:
        doc, _ = monitor_config(book, source)
        for r in doc["rules"]:
            rule = next(x for x in book.rules if reason_of(x.id) == r["reason"])
            out[rule.id] = (rule, r["pattern"])
    return list(out.values())


def all_examples(book: RuleBook) -> list[str]:
    return [e for r in book.rules for e in r.examples]


def variants(line: str) -> list[str]:
    """Lines near an example: cut, wrapped, case-swapped, with a non-ASCII letter glued on."""
    half = len(line) // 2
    return [line, line[:half], line[half:], f"prefix {line} suffix", line.swapcase(), line.upper(),
            f"é{line}é", line.replace(" ", "\t"), line.replace(" ", "\u3000")]


# ----------------------------------------------------------------------------- the shipped rules


def test_every_exported_pattern_compiles_with_re2_as_npd_anchors_it() -> None:
    book = shipped_book()
    exported = exported_rules(book)
    assert exported, "no rule was exported"
    for _rule, pattern in exported:
        re2.compile(pattern)
        re2.compile(pattern + "\\z")  # NPD up to now
        re2.compile(f"(?:{pattern})\\z")  # the grouped form


def test_every_exported_rule_matches_its_own_examples_in_npd() -> None:
    book = shipped_book()
    for rule, pattern in exported_rules(book):
        for example in rule.examples:
            assert npd_matches(pattern, example), (rule.id, example, pattern)
            # A fuller buffer (upstream's default of 10 lines) changes nothing.
            assert npd_matches(pattern, example, before=("unrelated line",) * 12, size=10), (rule.id, example)


def test_exported_patterns_decide_every_example_line_as_our_rules_do() -> None:
    """Every exported rule against every example of every rule, and lines near them."""
    book = shipped_book()
    lines = [v for e in all_examples(book) for v in variants(e)]
    for rule, pattern in exported_rules(book):
        for line in lines:
            assert npd_matches(pattern, line) == rule.matches(line), (rule.id, line, pattern)


_BOOK = shipped_book()
_EXPORTED = exported_rules(_BOOK)
_PIECES = sorted({w for e in all_examples(_BOOK) for w in re.split(r"(\W)", e) if w})


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=3)), max_size=12))
def test_exported_patterns_agree_with_our_rules_on_generated_lines(pieces: list[str]) -> None:
    """Lines glued from the examples' words and separators and random text (newlines cut: one line)."""
    line = "".join(pieces).replace("\n", " ")
    for rule, pattern in _EXPORTED:
        assert npd_matches(pattern, line, before=("x",), size=2) == rule.matches(line), (rule.id, line)


def test_a_match_in_an_older_line_of_the_buffer_is_not_a_match() -> None:
    book = shipped_book()
    for rule, pattern in exported_rules(book):
        example = rule.examples[0]
        assert not npd_matches(pattern, "a quiet line", before=(example,), size=10), rule.id
        # Neither under the grouped anchoring newer NPD versions compare against.
        buf = NpdBuffer(10)
        buf.push(example)
        buf.push("a quiet line")
        assert not buf.matches(pattern, grouped=True), rule.id


def test_every_rule_is_exported_or_left_out_with_a_reason() -> None:
    book = shipped_book()
    export = export_npd(book)
    for source in SOURCES:
        doc = export.configs[f"{source.name}.json"]
        reasons = {r["reason"] for r in doc["rules"]}
        left_out = {s.rule for s in export.skipped if s.source == source.name}
        for rule in book.for_component(source.component):
            assert (reason_of(rule.id) in reasons) != (rule.id in left_out), (source.name, rule.id)
    for s in export.skipped:
        rule = book.rule(s.rule)
        assert rule is not None and s.reason
        with pytest.raises(Untranslatable):
            npd_pattern([p.pattern for p in rule.patterns], [x.pattern for x in rule.exclude])


def test_errors_set_the_sources_condition_and_the_rest_are_events() -> None:
    book = shipped_book()
    export = export_npd(book)
    for source in SOURCES:
        doc = export.configs[f"{source.name}.json"]
        assert [c["type"] for c in doc["conditions"]] == [source.condition]
        for r in doc["rules"]:
            rule = next(x for x in book.rules if reason_of(x.id) == r["reason"])
            if rule.severity.value == "error":
                assert (r["type"], r["condition"]) == ("permanent", source.condition)
            else:
                assert r["type"] == "temporary" and "condition" not in r
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", r["reason"])
            assert r["patternGeneratedMessageSuffix"] == rule.summary.en


def test_sources_read_the_logs_npd_can_read() -> None:
    export = export_npd(shipped_book())
    by_plugin = {doc["plugin"] for doc in export.configs.values()}
    assert by_plugin == {"journald", "filelog"}
    for doc in export.configs.values():
        if doc["plugin"] == "journald":
            assert doc["pluginConfig"]["source"] and doc["logPath"] == "/var/log/journal"
        else:
            cfg = doc["pluginConfig"]
            line = 'time="2026-11-30T08:12:44.123456789Z" level=fatal msg="snapshotter not loaded: overlayfs"'
            assert re2.search(cfg["timestamp"], line).groups()[-1] == "2026-11-30T08:12:44.123456789Z"
            assert re2.search(cfg["message"], line).groups()[-1] == line  # our rules see the whole line


def test_reasons_are_camel_case_ids() -> None:
    assert reason_of("containerd.config-invalid") == "ContainerdConfigInvalid"
    assert reason_of("k3s.cgroupv2-unsupported") == "K3sCgroupv2Unsupported"


# ----------------------------------------------------------------------------- the translation


@pytest.mark.parametrize("pattern, reason", [
    (r"foo(?=bar)", "look-ahead"),
    (r"(?<!no )space", "look-ahead or look-behind"),
    (r"(a)\1", "back-reference"),
    (r"(a)?(?(1)b|c)", "conditional"),
    (r"a++", "possessive"),
    (r"(?>ab)", "atomic"),
    (r"foo\bbar", "word boundary"),
    (r"a{1001}", "limit"),
])
def test_what_re2_cannot_express_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason):
        translate(pattern)


def test_an_exclude_list_is_refused() -> None:
    with pytest.raises(Untranslatable, match="exclude"):
        npd_pattern(["read-only file system"], ["/proc/sys/"])


@pytest.mark.parametrize("pattern, lines", [
    (r"^k3s: (?:a|b)$", ["k3s: a", "k3s: b", " k3s: a", "k3s: ab", "xk3s: b"]),
    (r"\bMemoryError\b", ["MemoryError", "a MemoryError.", "éMemoryError", "MemoryErrors", "_MemoryError", "1MemoryError"]),
    (r"(?i)No Space", ["no space", "NO SPACE here", "nospace"]),
    (r"a(?i:b)c", ["abc", "aBc", "ABC", "abC"]),
    (r"x\s+y", ["x y", "x\ty", "x\u3000y", "x\u00a0y", "xy"]),
    (r"\d+ errors", ["12 errors", "١٢ errors", "x errors"]),
    (r"[^a]z", ["bz", "az", "z"]),
    (r"foo.*bar", ["foo bar", "foobar", "foo\rbar", "bar foo"]),
    (r"(?s)foo.bar", ["foo bar", "foobar"]),
    (r"(?a)\w+!", ["abc!", "é!", "!"]),
    (r"(?m)^a|b$", ["a", "xa", "b", "bx"]),
    (r"x{2,3}?y", ["xxy", "xy", "xxxxy"]),
    (r"[\S]+=[\s\d]", ["a= ", "a=1", "a=x"]),
])
def test_translated_patterns_decide_lines_as_python_does(pattern: str, lines: list[str]) -> None:
    exported = npd_pattern([pattern])
    for line in lines:
        for before in ((), (line,), ("x", "y")):
            want = re.search(pattern, line) is not None
            assert npd_matches(exported, line, before=before, size=3) == want, (pattern, line, before)


def test_python_classes_are_spelled_out_code_point_by_code_point() -> None:
    r"""Python's Unicode \w, \d and \s, and its case-insensitive letters, against their RE2
    spelling, on every code point Python's Unicode version assigns (a newer RE2 table may know
    more, unassigned here)."""
    chars = "".join(c for c in map(chr, range(0x110000))
                    if c != "\n" and unicodedata.category(c) not in ("Cn", "Cs"))
    ignoring_case = [f"(?i:{c})" for c in "abcdefghijklmnopqrstuvwxyz"] + [
        "(?i:[a-z])", "(?i:[^a-z])", "(?i:[^i])", "(?i:[h-j])", "(?i:σ)", "(?i:ß)", "(?i:[0-9a-f])"]
    for py in (r"\w", r"\d", r"\s", r"\W", r"\D", r"\S", r"[^\d\s]", r"[\w.-]", *ignoring_case):
        runs = f"(?:{py})+"
        theirs = [m.span() for m in re2.finditer(translate(runs), chars)]
        ours = [m.span() for m in re.finditer(runs, chars)]
        assert theirs == ours, py


# ----------------------------------------------------------------------------- the command


def test_export_writes_one_config_per_source_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "npd"
    assert main(["rules", "--export", "npd", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{s.name}.json" for s in SOURCES] + ["configmap.json", "daemonset.json"])
    for s in SOURCES:
        doc = json.loads((out / f"{s.name}.json").read_text())
        assert doc["rules"] and doc["source"] == f"rainbond-{s.name}-monitor"
    assert capsys.readouterr().out.splitlines() == [str(out / n) for n in export_npd(shipped_book()).files()]


def test_component_keeps_its_sources_only(tmp_path: Path) -> None:
    assert main(["rules", "--export", "npd", "--component", "containerd", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "configmap.json", "containerd.json", "daemonset.json", "k3s-containerd.json"]


@pytest.mark.parametrize("argv", [
    ["rules", "--export", "npd"],
    ["rules", "--export", "yaml", "--out", "X"],
    ["rules", "--export", "npd", "--component", "console", "--out", "X"],
    ["rules", "--out", "X"],
    ["rules", "--export", "npd", "--check", "conf/rules.toml", "--out", "X"],
])
def test_bad_usage_exits_2_with_one_sentence(argv: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rainbond-watchdog rules: ")
    assert not any(tmp_path.iterdir())


def test_a_rule_re2_cannot_express_is_left_out_with_a_note_on_stderr(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text('''
[[rule]]
id = "k3s.look-around"
component = "k3s"
severity = "error"
patterns = ['token (?!redacted)\\w+']
summary.zh = "测试"
summary.en = "A test rule."
remediation.zh = ["无"]
remediation.en = ["None."]
examples = ["token abc"]
''')
    config = tmp_path / "watchdog.toml"
    config.write_text(f'rules = ["rules.toml", "{extra}"]\n')
    out = tmp_path / "npd"
    assert main(["rules", "--config", str(config), "--export", "npd", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "k3s.look-around left out of kubelet, k3s: a negative look-ahead" in err
    assert "K3sLookAround" not in (out / "k3s.json").read_text()
    assert json.loads((out / "k3s.json").read_text())["rules"]  # the others are there
