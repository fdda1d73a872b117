"""Colour bands, changes and charts (inline SVG, computed server-side: no chart library)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

# The bands the province's 766 trackers use: red below half the maximum, amber below 70%.
RED, AMBER = 0.5, 0.7


def band(points: float | None, maximum: float | None) -> str:
    if points is None or not maximum:
        return "none"
    ratio = points / maximum
    return "red" if ratio < RED else "amber" if ratio < AMBER else "green"


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def change_words(delta: float | None, unit: str = "điểm") -> str:
    if delta is None:
        return "chưa có kỳ trước"
    if abs(delta) < 0.005:
        return "không đổi"
    return f"{'tăng' if delta > 0 else 'giảm'} {fmt(abs(delta))} {unit}"


def rank_change_words(change: int | None) -> str:
    if change is None:
        return ""
    if change == 0:
        return "giữ nguyên"
    return f"tăng {change} bậc" if change > 0 else f"giảm {-change} bậc"


def previous_months(period: str, n: int) -> list[str]:
    """`202609`, 3 → [`202607`, `202608`, `202609`]; other period kinds give themselves."""
    if len(period) != 6 or not period.isdigit():
        return [period]
    year, month = int(period[:4]), int(period[4:])
    out = []
    for _ in range(n):
        out.append(f"{year:04d}{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def previous_period(period: str) -> str | None:
    if len(period) == 6 and period.isdigit():
        return previous_months(period, 2)[0]
    if len(period) == 6 and period[4] == "Q":
        y, q = int(period[:4]), int(period[5])
        return f"{y - 1}Q4" if q == 1 else f"{y}Q{q - 1}"
    if len(period) == 4 and period.isdigit():
        return str(int(period) - 1)
    return None


def period_words(period: str) -> str:
    if len(period) == 6 and period.isdigit():
        return f"tháng {int(period[4:]):02d}/{period[:4]}"
    if len(period) == 6 and period[4] == "Q":
        return f"quý {['I', 'II', 'III', 'IV'][int(period[5]) - 1]}/{period[:4]}"
    if "YTD" in period:
        return f"từ đầu năm đến tháng {period[-2:]}/{period[:4]}"
    return f"năm {period}"


def short_period(period: str) -> str:
    """A chart label: `202609` → "T9/26", `2026Q3` → "Q3/26"."""
    if len(period) == 6 and period.isdigit():
        return f"T{int(period[4:])}/{period[2:4]}"
    if len(period) == 6 and period[4] == "Q":
        return f"{period[4:]}/{period[2:4]}"
    return period


def vn_date(iso: str | None) -> str:
    """`2026-09-30` → "30/09/2026"."""
    if not iso:
        return ""
    y, m, d = iso[:10].split("-")
    return f"{d}/{m}/{y}"


def current_month(today: date) -> str:
    return f"{today.year:04d}{today.month:02d}"


def sparkline(values: Sequence[float | None], labels: Sequence[str], maximum: float,
              width: int = 320, height: int = 90) -> str:  # fmt: skip
    """A trend line with its points and labels, as an accessible inline SVG."""
    pad, n = 18, len(values)
    if n == 0:
        return ""
    step = (width - 2 * pad) / max(1, n - 1)
    known = [v for v in values if v is not None]
    # The axis spans the data (±5 points, within 0..maximum): a move of two points on a
    # 100-point axis would look flat.
    low = max(0.0, min(known, default=0) - 5)
    high = min(maximum, max(known, default=maximum) + 5) if maximum else 1.0
    span = max(high - low, 1e-9)

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * ((v - low) / span)

    pts = [(pad + i * step, y(v)) for i, v in enumerate(values) if v is not None]
    line = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in pts)
    dots = "".join(
        f'<circle cx="{pad + i * step:.1f}" cy="{y(v):.1f}" r="3"><title>{escape(labels[i])}: '
        f"{fmt(v)}</title></circle>"
        for i, v in enumerate(values) if v is not None
    )  # fmt: skip
    ticks = "".join(
        f'<text x="{pad + i * step:.1f}" y="{height - 2}" text-anchor="middle">'
        f"{escape(labels[i])}</text>"
        for i in range(n)
    )
    axis = (f'<text x="0" y="{pad - 6}" class="axis">{fmt(high, 0)}</text>'
            f'<text x="0" y="{height - pad + 10}" class="axis">{fmt(low, 0)}</text>')  # fmt: skip
    ticks += axis
    desc = ", ".join(f"{labels[i]}: {fmt(v)}" for i, v in enumerate(values))
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Xu hướng: {escape(desc)}"><polyline points="{line}" />{dots}{ticks}</svg>'
    )


def bar(points: float | None, maximum: float) -> str:
    ratio = 0.0 if points is None or not maximum else max(0.0, min(1.0, points / maximum))
    return (
        f'<svg class="bar band-{band(points, maximum)}" viewBox="0 0 100 8" '
        f'preserveAspectRatio="none" aria-hidden="true"><rect width="100" height="8" '
        f'class="bg"/><rect width="{100 * ratio:.1f}" height="8" class="fg"/></svg>'
    )
