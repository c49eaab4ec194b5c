"""The result table that every benchmark script prints (shared, so all look alike)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NamedTuple


class Row(NamedTuple):
    metric: str
    value: float | None  # None: the measurement raised
    unit: str
    op: str = ""  # ">=" or "<=", empty when there is no target
    bound: float | None = None

    @property
    def ok(self) -> str:
        if self.value is None:
            return "ERROR"
        if self.bound is None:
            return ""
        met = self.value >= self.bound if self.op == ">=" else self.value <= self.bound
        return "yes" if met else "NO"


def fmt(value: float | None) -> str:
    if value is None:
        return "error"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def print_table(title: str, header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    table = [tuple(header), *[tuple(line) for line in lines]]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    print(f"\n{title}")
    for j, line in enumerate(table):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def print_rows(title: str, rows: Sequence[Row]) -> None:
    lines = []
    for row in rows:
        target = f"{row.op} {row.bound:,g}" if row.bound is not None else ""
        lines.append((row.metric, fmt(row.value), row.unit, target, row.ok))
    print_table(title, ("metric", "value", "unit", "target", "ok"), lines)
