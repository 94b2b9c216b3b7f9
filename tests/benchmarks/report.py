"""One report per benchmark: absolute figures, candidate/baseline ratios, targets and checks."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """A target or a correctness check; `ok` is None when it could not be measured."""

    name: str
    ok: bool | None
    detail: str = ""
    kind: str = "target"


@dataclass
class Ratio:
    """How many times better the candidate did than the baseline on one figure."""

    scenario: str
    metric: str
    candidate: float
    baseline: float
    higher_is_better: bool = False

    @property
    def times(self) -> float:
        """Return how many times better the candidate is (above 1: the candidate wins)."""
        better, worse = (
            (self.candidate, self.baseline)
            if self.higher_is_better
            else (self.baseline, self.candidate)
        )
        if not worse:
            return math.inf if better else float("nan")
        return better / worse


@dataclass
class Report:
    """Everything one benchmark measured, ready to print and to save as JSON."""

    name: str
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, name: str, ok: bool | None, detail: str = "", kind: str = "target") -> None:
        """Record a target or correctness check."""
        self.checks.append(Check(name, ok, detail, kind))

    def correct(
        self, name: str, problems: list[str], passed: str = "equal to the emulator's ground truth"
    ) -> None:
        """Record a correctness check that passes when there are no problems."""
        detail = "; ".join(problems[:3]) + (" …" if len(problems) > 3 else "")
        self.check(name, not problems, detail or passed, "correctness")

    @property
    def failed(self) -> list[Check]:
        """Return the correctness checks that failed (targets missed are reported, not failures)."""
        return [c for c in self.checks if c.kind == "correctness" and c.ok is False]

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON data."""
        data = asdict(self)
        data["ratios"] = [{**asdict(r), "times": _json_number(r.times)} for r in self.ratios]
        return data

    def render(self) -> str:
        """Return the report as text tables."""
        parts = [f"== {self.title} ({self.seconds:.0f} s)"]
        if self.rows:
            parts.append(table(self.rows))
        if self.ratios:
            parts.append(table([_ratio_row(r) for r in self.ratios]))
        parts.extend(f"[{_mark(c.ok)}] {c.kind}: {c.name} — {c.detail}" for c in self.checks)
        parts.extend(f"note: {n}" for n in self.notes)
        return "\n".join(parts) + "\n"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "MISS", None: "n/a"}[ok]


def _ratio_row(r: Ratio) -> dict[str, Any]:
    return {
        "scenario": r.scenario,
        "metric": r.metric,
        "candidate": r.candidate,
        "baseline": r.baseline,
        "times better": r.times,
    }


def fmt(value: Any) -> str:
    """Format one table cell: floats to 3 significant figures, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞"
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """Render rows (dicts) as an aligned text table, columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(lines)


def save(reports: list[Report], path: Path, meta: dict[str, Any]) -> None:
    """Write the run's reports as one JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "benchmarks": [r.to_json() for r in reports]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
