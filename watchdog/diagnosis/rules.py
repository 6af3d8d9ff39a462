"""Rules and the problem catalog, as data: schema, loading, validation and matching.

``conf/rules.toml`` holds two kinds of entries:

* ``[[rule]]``: recognises a known problem in log lines (regex ``patterns``, with ``examples``
  that must match), for the listener's failure path and for ``rainbond-watchdog explain``;
* ``[[problem]]``: the texts of problems that checks raise without a log pattern
  (``k3s.start-failed``, ``region.pod-pending``, ``host.disk-low`` ...).

Texts may hold ``{placeholders}`` that the check fills (``{subject}``, ``{detail}`` ...).
Regexes are compiled once, at load; a bad file is refused naming file, rule id and reason.
"""
from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from watchdog.config import ConfigError
from watchdog.diagnosis.anchors import rule_anchors
from watchdog.diagnosis.dependencies import Dependency, check_problem_ids, parse_dependencies
from watchdog.diagnosis.redaction import redact
from watchdog.model import COMPONENTS, LANGUAGES, Finding, Severity, Steps, Texts

ANY_COMPONENT = "host"
"""Rules of component ``host`` (disk full ...) apply to every component's log."""
REGION_COMPONENT = "region"
"""Rules of component ``region`` read the previous log of a crash-looping ``rbd-system`` pod."""
RULE_COMPONENTS = (*COMPONENTS, ANY_COMPONENT, REGION_COMPONENT)
CHECK_COMPONENTS = (*COMPONENTS, "host", "region", "node", "process", "phase")
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_EVIDENCE_LINES = 20
MAX_LINE_CHARS = 500
CONTEXT_LINES = 1
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Terminal colour codes (the init script's `echo -e "${GREEN}..."`): noise in evidence."""


@dataclass(frozen=True)
class Rule:
    id: str
    components: tuple[str, ...]
    severity: Severity
    patterns: tuple[re.Pattern[str], ...]
    summary: Texts
    remediation: Steps
    examples: tuple[str, ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    docs: str = ""
    file: str = ""
    anchors: tuple[str, ...] | None = None
    """Lower-case literals of which every matching line holds one (None: no pre-filter)."""

    @property
    def component(self) -> str:
        """The component the problem is reported under (the first one listed)."""
        return self.components[0]

    def applies_to(self, component: str | None) -> bool:
        return component is None or component in self.components or ANY_COMPONENT in self.components

    def matches(self, line: str) -> bool:
        return any(p.search(line) for p in self.patterns) and not any(x.search(line) for x in self.exclude)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    component: str
    severity: Severity
    summary: Texts
    remediation: Steps
    docs: str = ""
    file: str = ""


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule
    line_numbers: tuple[int, ...]
    """0-based indexes into the lines that were matched."""


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...] = ()
    entries: Mapping[str, CatalogEntry] = field(default_factory=dict)
    dependencies: tuple[Dependency, ...] = ()
    """The region's dependency map (``[[dependency]]`` tables, ``conf/region_dependencies.toml``)."""

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    _by_component: dict[str | None, tuple[Rule, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_component(self, component: str | None) -> tuple[Rule, ...]:
        found = self._by_component.get(component)
        if found is None:  # computed once per component: the listener asks on every init line
            found = self._by_component[component] = tuple(r for r in self.rules if r.applies_to(component))
        return found

    _screens: dict[str | None, re.Pattern[str] | None] = field(default_factory=dict, init=False, repr=False,
                                                              compare=False)

    def screen(self, component: str | None) -> re.Pattern[str] | None:
        """One expression for every anchor of the component's rules: text it does not find
        matches none of them (``None`` when a rule has no anchors, and so cannot be screened)."""
        if component not in self._screens:
            rules = self.for_component(component)
            anchors = sorted({a for r in rules for a in (r.anchors or ())}, key=lambda a: (-len(a), a))
            usable = bool(rules) and all(r.anchors for r in rules)
            self._screens[component] = re.compile("|".join(map(re.escape, anchors))) if usable else None
        return self._screens[component]

    def match(self, lines: Sequence[str], component: str | None = None) -> list[RuleMatch]:
        """Every rule that matches at least one line, in rule order.

        A rule's regexes run only on the lines holding one of its anchors (found with plain
        substring search over the lower-cased text), so a failure's tail costs about a millisecond;
        text holding no anchor of any rule (an init program's ordinary line) is passed over with
        one search.
        """
        text = "\n".join(lines).lower()
        starts: list[int] = []
        offset = 0
        for line in lines:
            starts.append(offset)
            offset += len(line) + 1
        # lower() may change a line's length (a few Unicode letters): then offsets are not lines.
        aligned = len(text) == sum(map(len, lines)) + max(0, len(lines) - 1)
        screen = self.screen(component)
        if aligned and screen is not None and screen.search(text) is None:
            return []  # no anchor of any rule: every rule would be skipped below
        out: list[RuleMatch] = []
        for rule in self.for_component(component):
            if rule.anchors is None or not aligned:
                candidates: Iterable[int] = range(len(lines))
            elif not any(literal in text for literal in rule.anchors):
                continue  # the common case, one scan per anchor and nothing else
            else:
                found: set[int] = set()
                for literal in rule.anchors:
                    pos = text.find(literal)
                    while pos != -1:
                        found.add(bisect.bisect_right(starts, pos) - 1)
                        pos = text.find(literal, pos + 1)
                candidates = sorted(found)
            hits = tuple(i for i in candidates if rule.matches(lines[i]))
            if hits:
                out.append(RuleMatch(rule, hits))
        return out

    def texts(self, problem_id: str) -> tuple[str, Severity, Texts, Steps]:
        """(component, severity, summary, remediation) of a problem id, from a rule or entry."""
        entry = self.entries.get(problem_id)
        if entry is not None:
            return entry.component, entry.severity, entry.summary, entry.remediation
        rule = self.rule(problem_id)
        if rule is not None:
            return rule.component, rule.severity, rule.summary, rule.remediation
        raise KeyError(f"problem id {problem_id!r} is in no rule file")

    def finding(
        self,
        problem_id: str,
        subject: str,
        *,
        evidence: Iterable[str] = (),
        source: str = "",
        scope: str = "",
        component: str | None = None,
        severity: Severity | None = None,
        details: Mapping[str, str] | None = None,
    ) -> Finding:
        """A finding with the catalog's texts, placeholders filled, evidence redacted and bounded."""
        comp, sev, summary, steps = self.texts(problem_id)
        # Details may quote a command line or a log (a token, a password): redact them too.
        values = _Values({k: redact(v) for k, v in {"subject": subject, **(details or {})}.items()})
        return Finding(
            id=problem_id,
            subject=redact(subject),
            severity=severity or sev,
            component=component or comp,
            summary=Texts(_fill(summary.zh, values), _fill(summary.en, values)),
            remediation=Steps(
                tuple(_fill(s, values) for s in steps.zh), tuple(_fill(s, values) for s in steps.en)
            ),
            evidence=bound_evidence(evidence),
            source=redact(source),
            scope=scope,
        )


def bound_evidence(lines: Iterable[str]) -> tuple[str, ...]:
    """Redacted, at most 20 lines of at most 500 characters (the contract's bounds)."""
    out: list[str] = []
    for line in lines:
        line = redact(_ANSI.sub("", line))
        if len(line) > MAX_LINE_CHARS:
            line = line[: MAX_LINE_CHARS - 1] + "…"
        out.append(line)
    return tuple(out[-MAX_EVIDENCE_LINES:])


def evidence_for(lines: Sequence[str], hits: Sequence[int], context: int = CONTEXT_LINES) -> list[str]:
    """The matched lines with a little context, in file order, the latest kept when too many."""
    keep: set[int] = set()
    for i in hits:
        keep.update(range(max(0, i - context), min(len(lines), i + context + 1)))
    picked = sorted(keep)
    if len(picked) > MAX_EVIDENCE_LINES:
        # Prefer the matched lines themselves over context when space runs out.
        picked = sorted(set(hits))[-MAX_EVIDENCE_LINES:]
    return [lines[i] for i in picked]


class _Values(dict[str, str]):
    pass


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def _fill(text: str, values: _Values) -> str:
    """Replace ``{name}`` for the names the check gave; every other brace stays as written,
    so texts can quote Go templates such as ``docker inspect --format '{{json .Mounts}}'``."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# ----------------------------------------------------------------------------- loading


def load_rule_files(paths: Sequence[str | Path]) -> RuleBook:
    """Load rule files in order; a later file's rule or problem replaces an earlier one's id."""
    rules: dict[str, Rule] = {}
    entries: dict[str, CatalogEntry] = {}
    deps: dict[str, Dependency] = {}
    for path in paths:
        data = _read_toml(path)
        file_rules, file_entries = parse_rules(data, str(path))
        for r in file_rules:
            rules[r.id] = r
        for e in file_entries:
            entries[e.id] = e
        for d in parse_dependencies(data.get("dependency", []), str(path)):
            deps[d.component] = d  # a later file's map of a component replaces an earlier one's
    check_problem_ids(list(deps.values()), set(rules) | set(entries))
    return RuleBook(tuple(rules.values()), entries, tuple(deps.values()))


def load_rule_file(path: str | Path) -> tuple[list[Rule], list[CatalogEntry]]:
    """One file's rules and problems (its ``[[dependency]]`` tables are validated too)."""
    data = _read_toml(path)
    parse_dependencies(data.get("dependency", []), str(path))
    return parse_rules(data, str(path))


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read rule file: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from e
    return data


def parse_rules(data: Mapping[str, Any], file: str) -> tuple[list[Rule], list[CatalogEntry]]:
    unknown = sorted(set(data) - {"rule", "problem", "dependency"})
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]}: unknown table (expected [[rule]], [[problem]] or [[dependency]])")
    rule_tables = _table_list(data.get("rule", []), file, "rule")
    problem_tables = _table_list(data.get("problem", []), file, "problem")
    rules = [_parse_rule(t, file, i) for i, t in enumerate(rule_tables)]
    entries = [_parse_entry(t, file, i) for i, t in enumerate(problem_tables)]
    seen: set[str] = set()
    items: list[Rule | CatalogEntry] = [*rules, *entries]
    for item in items:
        if item.id in seen:
            raise ConfigError(f"{file}: {item.id}: id defined twice in this file")
        seen.add(item.id)
    _check_examples(rules, file)
    return rules, entries


def _table_list(value: Any, file: str, name: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError(f"{file}: {name}: expected an array of tables [[{name}]]")
    return value


_RULE_KEYS = {"id", "component", "severity", "patterns", "exclude", "summary", "remediation", "examples", "docs"}
_ENTRY_KEYS = {"id", "component", "severity", "summary", "remediation", "docs"}


def _parse_rule(t: Mapping[str, Any], file: str, index: int) -> Rule:
    rid = _parse_id(t, file, f"rule[{index}]")
    where = f"{file}: rule {rid}"
    _no_unknown(t, _RULE_KEYS, where)
    comps = t.get("component")
    components = (comps,) if isinstance(comps, str) else comps
    if not isinstance(components, (list, tuple)) or not components or not all(
        isinstance(c, str) for c in components
    ):
        raise ConfigError(f"{where}: component: expected a name or a list of names")
    for c in components:
        if c not in RULE_COMPONENTS:
            raise ConfigError(f"{where}: component: {c!r} is not one of {', '.join(RULE_COMPONENTS)}")
    patterns = _compile_all(t.get("patterns"), where, "patterns", required=True)
    exclude = _compile_all(t.get("exclude", []), where, "exclude", required=False)
    examples = t.get("examples", [])
    if not isinstance(examples, list) or not examples or not all(isinstance(e, str) for e in examples):
        raise ConfigError(f"{where}: examples: expected a non-empty list of log lines that must match")
    return Rule(
        id=rid,
        components=tuple(components),
        severity=_parse_severity(t, where),
        patterns=patterns,
        exclude=exclude,
        summary=_parse_summary(t, where),
        remediation=_parse_remediation(t, where),
        examples=tuple(examples),
        docs=_parse_docs(t, where),
        file=file,
        anchors=rule_anchors(patterns),
    )


def _parse_entry(t: Mapping[str, Any], file: str, index: int) -> CatalogEntry:
    pid = _parse_id(t, file, f"problem[{index}]")
    where = f"{file}: problem {pid}"
    _no_unknown(t, _ENTRY_KEYS, where)
    comp = t.get("component")
    if comp not in CHECK_COMPONENTS:
        raise ConfigError(f"{where}: component: expected one of {', '.join(CHECK_COMPONENTS)}")
    return CatalogEntry(
        id=pid,
        component=str(comp),
        severity=_parse_severity(t, where),
        summary=_parse_summary(t, where),
        remediation=_parse_remediation(t, where),
        docs=_parse_docs(t, where),
        file=file,
    )


def _parse_id(t: Mapping[str, Any], file: str, where: str) -> str:
    rid = t.get("id")
    if not isinstance(rid, str) or not ID_RE.match(rid):
        raise ConfigError(f"{file}: {where}: id: expected 'component.kebab-name', got {rid!r}")
    return rid


def _no_unknown(t: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}: unknown key")


def _parse_severity(t: Mapping[str, Any], where: str) -> Severity:
    try:
        return Severity(str(t.get("severity")))
    except ValueError as e:
        raise ConfigError(f"{where}: severity: expected error, warning or info, got {t.get('severity')!r}") from e


def _parse_summary(t: Mapping[str, Any], where: str) -> Texts:
    s = t.get("summary")
    if not isinstance(s, Mapping):
        raise ConfigError(f"{where}: summary: expected a table with zh and en")
    for lang in LANGUAGES:
        if not isinstance(s.get(lang), str) or not s[lang].strip():
            raise ConfigError(f"{where}: summary.{lang}: missing or empty")
    extra = sorted(set(s) - set(LANGUAGES))
    if extra:
        raise ConfigError(f"{where}: summary.{extra[0]}: unknown language (zh, en)")
    return Texts(s["zh"], s["en"])


def _parse_remediation(t: Mapping[str, Any], where: str) -> Steps:
    r = t.get("remediation")
    if not isinstance(r, Mapping):
        raise ConfigError(f"{where}: remediation: expected a table with zh and en step lists")
    for lang in LANGUAGES:
        steps = r.get(lang)
        if not isinstance(steps, list) or not steps or not all(isinstance(x, str) and x.strip() for x in steps):
            raise ConfigError(f"{where}: remediation.{lang}: expected a non-empty list of steps")
    extra = sorted(set(r) - set(LANGUAGES))
    if extra:
        raise ConfigError(f"{where}: remediation.{extra[0]}: unknown language (zh, en)")
    return Steps(tuple(r["zh"]), tuple(r["en"]))


def _parse_docs(t: Mapping[str, Any], where: str) -> str:
    docs = t.get("docs", "")
    if not isinstance(docs, str):
        raise ConfigError(f"{where}: docs: expected a URL string")
    return docs


def _compile_all(value: Any, where: str, key: str, required: bool) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or (required and not value) or not all(isinstance(p, str) for p in value):
        raise ConfigError(f"{where}: {key}: expected a {'non-empty ' if required else ''}list of regular expressions")
    out = []
    for i, p in enumerate(value):
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise ConfigError(f"{where}: {key}[{i}]: bad regular expression: {e}") from e
    return tuple(out)


def _check_examples(rules: list[Rule], file: str) -> None:
    for rule in rules:
        for example in rule.examples:
            if not rule.matches(example):
                raise ConfigError(f"{file}: rule {rule.id}: example does not match its own rule: {example[:120]!r}")
