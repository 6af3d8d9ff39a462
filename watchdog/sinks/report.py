"""The status document as text for a person: components, then problems with their remedies."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

_OVERALL = {
    "healthy": ("健康", "healthy"),
    "starting": ("启动中", "starting"),
    "degraded": ("降级", "degraded"),
    "failed": ("失败", "failed"),
}
_SEVERITY = {"error": ("错误", "ERROR"), "warning": ("警告", "WARNING"), "info": ("提示", "INFO")}
_LAYOUT = ("镜像布局", "Layout")
_HEAD = {
    "zh": ("整体状态", "阶段", "组件", "当前问题", "处理建议", "证据", "没有发现问题。"),
    "en": ("Overall", "Phase", "Components", "Problems", "What to do", "Evidence", "No problems found."),
}


def render_text(doc: Mapping[str, Any], languages: Sequence[str], evidence_lines: int = 5) -> str:
    out: list[str] = []
    for lang in languages:
        i = 0 if lang == "zh" else 1
        h = _HEAD[lang]
        overall = _OVERALL.get(str(doc.get("overall")), (str(doc.get("overall")),) * 2)[i]
        layout = f"    {_LAYOUT[i]}: {doc['layout']}" if doc.get("layout") else ""
        out.append(f"{h[0]}: {overall}    {h[1]}: {doc.get('phase')}{layout}    ({doc.get('generated_at')})")
        out.append(f"{h[2]}:")
        for line in _component_rows(doc.get("components", {})):
            out.append("  " + line)
        problems = doc.get("problems", [])
        if not problems:
            out.append(h[6])
        else:
            out.append(f"{h[3]} ({len(problems)}):")
            for p in problems:
                sev = _SEVERITY.get(p.get("severity", ""), (p.get("severity", ""),) * 2)[i]
                summary = p.get("summary", {}).get(lang, "")
                out.append(f"  [{sev}] {p.get('id')} ({p.get('subject')}) x{p.get('count', 1)}: {summary}")
                steps = p.get("remediation", {}).get(lang, [])
                if steps:
                    out.append(f"    {h[4]}:")
                    out.extend(f"      {n}. {s}" for n, s in enumerate(steps, 1))
                evidence = p.get("evidence", [])[-evidence_lines:]
                if evidence:
                    out.append(f"    {h[5]} ({p.get('source', '')}):")
                    out.extend(f"      | {e}" for e in evidence)
        out.append("")
    return "\n".join(out)


def _component_rows(components: Mapping[str, Any]) -> list[str]:
    rows = []
    for name in ("containerd", "k3s", "console"):
        c = components.get(name)
        if not isinstance(c, Mapping):
            continue
        extra = []
        if c.get("pid"):
            extra.append(f"pid {c['pid']}")
        if c.get("exitstatus") not in (None, 0) and c.get("state") != "RUNNING":
            extra.append(f"exit {c['exitstatus']}")
        if c.get("restarts"):
            extra.append(f"restarts {c['restarts']}")
        rows.append(f"{name:<11} {c.get('state', '?'):<9} {', '.join(extra)}".rstrip())
    region = components.get("region")
    if isinstance(region, Mapping):
        rows.append(f"{'region':<11} api {region.get('api')}, pods {region.get('pods_ready', 0)}/{region.get('pods_total', 0)} ready")
    host = components.get("host")
    if isinstance(host, Mapping):
        for path, u in sorted(host.get("paths", {}).items()):
            gib = (u.get("free_bytes") or 0) / 2**30
            rows.append(f"{'host':<11} {path}: {gib:.1f} GiB free ({u.get('free_percent')}%)")
    return rows
