"""The short report of a training run: markdown plus an SVG plot (no plotting library).

The plot shows, per retrained model, the gated metric of the parent and of this run's
model on the parent's test split (the numbers the gate decided on).
"""

from __future__ import annotations

import html
import json


def _bars(result: dict) -> list[tuple[str, float | None, float | None]]:
    rows = []
    for model, gates in (result.get("gates") or {}).items():
        prev = gates.get("previous_test") or {}
        if "new" in prev:
            rows.append((f"{model} {prev.get('metric', '')}", prev.get("parent"), prev.get("new")))
    return rows


def render_svg(result: dict) -> str:
    rows = _bars(result)
    width, row_h, left = 560, 46, 150
    height = 50 + row_h * max(1, len(rows)) + 30
    parent_name = result.get("parent") or "parent"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="10" y="20" font-size="14">run {html.escape(str(result.get("run_id")))}: '
        f"{html.escape(str(result.get('status')))} - metric on the parent's test split</text>",
        f'<rect x="{left}" y="30" width="10" height="10" fill="#9e9e9e"/>'
        f'<text x="{left + 14}" y="39">{html.escape(parent_name)}</text>',
        f'<rect x="{left + 90}" y="30" width="10" height="10" fill="#1e88e5"/>'
        f'<text x="{left + 104}" y="39">this run</text>',
    ]
    scale = width - left - 70
    if not rows:
        out.append('<text x="10" y="70">no model was compared with a parent</text>')
    for i, (label, old, new) in enumerate(rows):
        y = 50 + i * row_h
        out.append(f'<text x="10" y="{y + 20}">{html.escape(label)}</text>')
        for j, (value, colour) in enumerate(((old, "#9e9e9e"), (new, "#1e88e5"))):
            if value is None:
                continue
            bar_w = max(0.0, min(1.0, float(value))) * scale
            by = y + 4 + j * 18
            out.append(f'<rect x="{left}" y="{by}" width="{bar_w:.1f}" height="14" fill="{colour}"/>')
            out.append(f'<text x="{left + bar_w + 4:.1f}" y="{by + 11}">{float(value):.4f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_markdown(result: dict) -> str:
    lines = [
        f"# Training run {result.get('run_id')}: {result.get('status')}",
        "",
        f"- models asked: {', '.join(result.get('models') or [])}",
        f"- parent: {result.get('parent')}; published: {result.get('version') or 'nothing'}",
        f"- started {result.get('started_at')}, finished {result.get('finished_at')}",
        f"- dataset snapshot: `{json.dumps(result.get('snapshot'))}`",
        f"- timings (s): `{json.dumps(result.get('timings'))}`",
    ]
    if result.get("skipped"):
        lines.append(f"- skipped: `{json.dumps(result['skipped'])}`")
    if result.get("error"):
        lines.append(f"- error: {result['error']}")
    if result.get("reasons"):
        lines += ["", "## Why it was rejected", ""] + [f"- {r}" for r in result["reasons"]]
    lines += ["", "## Gates", "", "| model | gate | passed | numbers |", "|---|---|---|---|"]
    for model, gates in (result.get("gates") or {}).items():
        for gate, g in gates.items():
            numbers = {k: v for k, v in g.items() if k not in ("passed", "reason", "wrong")}
            lines.append(
                f"| {model} | {gate} | {'yes' if g['passed'] else 'NO'} | {g['reason']} `{json.dumps(numbers)}` |"
            )
    lines += ["", "![metrics of this run against its parent](metrics.svg)", ""]
    for model, metrics in (result.get("metrics") or {}).items():
        test = metrics.get("test")
        if test is not None:
            lines.append(f"- {model} test (this run's own split): `{json.dumps(test)}`")
    return "\n".join(lines) + "\n"


def render_report(result: dict) -> tuple[str, str]:
    return render_markdown(result), render_svg(result)
