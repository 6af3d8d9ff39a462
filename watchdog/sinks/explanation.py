"""What ``explain`` and ``rules`` print: text for a person in the configured languages, or JSON."""
from __future__ import annotations

import json
from typing import Sequence

from watchdog.diagnosis.rules import RuleBook
from watchdog.diagnosis.scanning import Explained

_SEVERITY = {"error": ("错误", "ERROR"), "warning": ("警告", "WARNING"), "info": ("提示", "INFO")}
_WORDS = {
    "zh": {
        "nothing": "没有发现已知问题",
        "problems": "个问题",
        "fix": "处理建议",
        "evidence": "证据",
        "matches": "处匹配，第 {first}–{last} 行",
        "rules": "生效的规则",
        "entries": "问题目录（由检查而非日志规则产生）",
    },
    "en": {
        "nothing": "no known problem found",
        "problems": "problem(s)",
        "fix": "What to do",
        "evidence": "Evidence",
        "matches": "matching line(s), lines {first}–{last}",
        "rules": "Rules in force",
        "entries": "Problem catalog (raised by checks, not log rules)",
    },
}


def explanation_json(results: Sequence[Explained]) -> str:
    """``{"problems": [PROBLEM, ...]}``: the contract's PROBLEM without the lifecycle fields."""
    return json.dumps({"problems": [e.finding.as_dict() for e in results]}, ensure_ascii=False, indent=2) + "\n"


def explanation_text(inputs: Sequence[tuple[str, Sequence[Explained]]], languages: Sequence[str]) -> str:
    """Per input, per language: each problem, its remedy, and the latest evidence."""
    out: list[str] = []
    for lang in _languages(languages):
        w = _WORDS[lang]
        i = 0 if lang == "zh" else 1
        for name, results in inputs:
            if not results:
                out.append(f"{name}: {w['nothing']}")
                continue
            out.append(f"{name}: {len(results)} {w['problems']}")
            for e in results:
                f = e.finding
                sev = _SEVERITY.get(f.severity.value, (f.severity.value,) * 2)[i]
                summary = f.summary.zh if lang == "zh" else f.summary.en
                out.append(f"  [{sev}] {f.id}: {summary}")
                steps = f.remediation.zh if lang == "zh" else f.remediation.en
                out.append(f"    {w['fix']}:")
                out.extend(f"      {n}. {s}" for n, s in enumerate(steps, 1))
                where = w["matches"].format(first=e.first_line, last=e.last_line)
                out.append(f"    {w['evidence']} ({e.matches} {where}):")
                out.extend(f"      | {line}" for line in f.evidence[-6:])
        out.append("")
    return "\n".join(out)


def rules_text(book: RuleBook, languages: Sequence[str]) -> str:
    """The rules in force (id, severity, components, summary, file) and the problem catalog."""
    lang = _languages(languages)[0]
    w = _WORDS[lang]
    out = [f"{w['rules']} ({len(book.rules)}):"]
    width = max((len(r.id) for r in book.rules), default=10)
    for r in book.rules:
        summary = r.summary.zh if lang == "zh" else r.summary.en
        out.append(f"  {r.id:<{width}}  {r.severity.value:<7}  {','.join(r.components):<22}  {summary}")
    out.append("")
    out.append(f"{w['entries']} ({len(book.entries)}):")
    width = max((len(k) for k in book.entries), default=10)
    for e in book.entries.values():
        summary = e.summary.zh if lang == "zh" else e.summary.en
        out.append(f"  {e.id:<{width}}  {e.severity.value:<7}  {e.component:<10}  {summary}")
    files = sorted({r.file for r in book.rules} | {e.file for e in book.entries.values()})
    out.append("")
    out.extend(f"  < {f}" for f in files if f)
    return "\n".join(out) + "\n"


def _languages(languages: Sequence[str]) -> list[str]:
    return [lang for lang in languages if lang in _WORDS] or ["en"]
