"""Writes ``report.md`` and ``report.json`` from the sections."""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def summary_rows(sections: list[dict]) -> list[list[str]]:
    """``[item, claim, measured (first rows), verdict]`` per section, for the report and the README."""
    rows = []
    for s in sections:
        measured = s.get("summary") or s.get("status", "")
        rows.append([s.get("title", s["key"]), s.get("claim", ""), measured, s["verdict"]])
    return rows


def _finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None`` (strict JSON: no spread with one seed)."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)  # numpy floats too
        return value if math.isfinite(value) else None
    return value


def write(out: str, header: dict[str, Any], sections: list[dict], notes: list[str]) -> tuple[str, str]:
    """``OUT/report.md`` and ``OUT/report.json``; figure paths are relative to ``OUT`` in both."""
    for s in sections:
        for key in ("figure",):
            if s.get(key):
                s[key] = os.path.relpath(s[key], out)
        if s.get("figures"):
            s["figures"] = [os.path.relpath(p, out) for p in s["figures"]]
    payload = {**header, "notes": notes, "sections": {s["key"]: s for s in sections}}
    json_path = os.path.join(out, "report.json")
    with open(json_path, "w") as f:
        json.dump(_finite_or_none(payload), f, indent=2, default=float, allow_nan=False)
    lines = [f"# Reproducing the paper: {header['scale']}", "",
             f"Command: `{header['command']}`  ", f"Date: {header['date']}  ",
             f"Seeds: {header['seeds']}; wall time {header['elapsed_s']:.0f} s; steps: {header['step_counts']}", ""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Summary", ""] + _table(["item", "paper's claim", "measured", "verdict"], summary_rows(sections)) + [""]
    for s in sections:
        lines += [f"## {s.get('title', s['key'])}", "", f"**Claim (paper):** {s.get('claim', '')}", ""]
        if s.get("status", "measured") != "measured":
            lines += [f"**Status:** {s['status']}", ""]
        if s.get("rows"):
            lines += _table(s["header"], s["rows"]) + [""]
        if s.get("rule"):
            lines += [f"**Rule:** {s['rule']}", ""]
        for p in s.get("parts", []):
            extra = ""
            if p.get("difference") is not None and p.get("pooled_std") is not None:
                spread = p["pooled_std"]
                spread_text = f"{spread:.4f}" if isinstance(spread, (int, float)) and math.isfinite(spread) else "n/a"
                extra = f" (difference {p['difference']:+.4f}, spread {spread_text}, seeds {p.get('seeds')})"
            lines.append(f"- {p['test']}: {p['verdict']}{extra}")
        lines += ["", f"**Verdict:** {s['verdict']}", ""]
        for figure in s.get("figures", [s["figure"]] if s.get("figure") else []):
            lines += [f"![{s['key']}]({figure})", ""]
    md_path = os.path.join(out, "report.md")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return md_path, json_path
