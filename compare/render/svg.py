"""Geometry of the timeline for inline SVG: the template draws what this computes (no markup here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from compare.view.model import TimelineView
from compare.view.words import human_date

WIDTH = 960
LEFT, RIGHT, TOP, ROW, BOTTOM = 150, 44, 16, 44, 40
#: Under this many days between the first and last date, ticks name days rather than months.
SHORT_AXIS_DAYS = 120
#: Bands of several sources on one row are spread over this share of the row's height.
BAND_SPREAD = 0.5


@dataclass(frozen=True)
class Row:
    label: str
    y: float


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Band:
    x1: float
    x2: float
    y: float
    colour: str
    dashed: bool
    tip: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    colour: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    colour: str
    tip: str


@dataclass(frozen=True)
class SvgTimeline:
    width: int
    height: int
    left: int
    right: int
    rows: list[Row]
    ticks: list[Tick]
    bands: list[Band]
    lines: list[Line]
    dots: list[Dot]
    legend: list[tuple[str, str]]


def _day(iso: str) -> int:
    return date.fromisoformat(iso[:10]).toordinal()


def _ticks(low: int, high: int, count: int = 6) -> list[int]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return sorted({round(low + i * step) for i in range(count)})


class _Scale:
    """Dates to x, rows to y (with a small offset per source so bands on one row do not hide each other)."""

    def __init__(self, timeline: TimelineView, width: int) -> None:
        days = [_day(d.date) for d in timeline.dots] + [
            _day(x) for b in timeline.bands for x in (b.start, b.end)
        ]
        self.low, self.high = min(days), max(days)
        self.width = width
        self.rows = timeline.rows
        sources = list(dict.fromkeys(b.source for b in timeline.bands))
        self.offsets = {s: _offset(i, len(sources)) for i, s in enumerate(sources)}

    def x(self, iso: str) -> float:
        span = max(self.high - self.low, 1)
        return round(LEFT + (_day(iso) - self.low) / span * (self.width - LEFT - RIGHT), 1)

    def y(self, row: str, source: str | None = None) -> float:
        return round(TOP + ROW * self.rows.index(row) + ROW / 2 + self.offsets.get(source or "", 0.0), 1)


def _offset(index: int, count: int) -> float:
    if count <= 1:
        return 0.0
    return (index / (count - 1) - 0.5) * ROW * BAND_SPREAD


def layout_timeline(timeline: TimelineView, width: int = WIDTH) -> SvgTimeline | None:
    if timeline.empty:
        return None
    scale = _Scale(timeline, width)
    bands = [
        Band(
            scale.x(b.start),
            max(scale.x(b.end), scale.x(b.start) + 6),
            scale.y(b.row, b.source),
            b.colour,
            b.dashed,
            b.tip,
        )
        for b in timeline.bands
    ]
    dots = [Dot(scale.x(d.date), scale.y(d.row), d.colour, d.tip) for d in timeline.dots]
    return SvgTimeline(
        width=width,
        height=TOP + ROW * len(timeline.rows) + BOTTOM,
        left=LEFT,
        right=RIGHT,
        rows=[Row(label, scale.y(label)) for label in timeline.rows],
        ticks=_tick_labels(scale),
        bands=bands,
        lines=_lines(timeline, scale),
        dots=dots,
        legend=timeline.legend,
    )


def _tick_labels(scale: _Scale) -> list[Tick]:
    """Months on a long axis, days on a short one; a label already shown is not repeated."""
    days = scale.high - scale.low < SHORT_AXIS_DAYS
    ticks: dict[str, Tick] = {}
    for ordinal in _ticks(scale.low, scale.high):
        iso = _iso(ordinal)
        label = human_date(iso if days else iso[:7])
        ticks.setdefault(label, Tick(scale.x(iso), label))
    return list(ticks.values())


def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _lines(timeline: TimelineView, scale: _Scale) -> list[Line]:
    """Each shift's two dated ends joined, before -> after."""
    ends: dict[int, list[tuple[float, float, str]]] = {}
    for dot in timeline.dots:
        ends.setdefault(dot.shift, []).append((scale.x(dot.date), scale.y(dot.row), dot.colour))
    return [Line(a[0], a[1], b[0], b[1], a[2]) for a, b in (pair for pair in ends.values() if len(pair) == 2)]
