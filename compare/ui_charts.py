"""Altair charts for the app: positions over time, and corpus coverage over time.

The timeline lays out the comparison view's `TimelineView` (rows in words, bands, dots, colours hashed from
the source key), the same data the HTML page draws as SVG; coverage comes from the store's document metadata.
Vega-Lite renders tooltips as text, so quotes in tooltips need no escaping here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import altair as alt

from compare.view.model import TimelineBand, TimelineDot, TimelineView

CHART_HEIGHT_PER_ROW = 56
#: Axis labels and the legend below the plot (Streamlit fits the whole chart, legend included, in `height`).
CHART_FRAME_HEIGHT = 90
TOOLTIP_CHARS = 280
_DATE_AXIS = alt.Axis(format="%b %Y", labelOverlap=True, grid=False, tickCount=8)
_DATE_SCALE = alt.Scale(padding=16)  # pixels: dots and pills at the ends are not clipped
#: A one-day span is drawn this share of the whole time axis wide, so it shows as a short pill.
MIN_SPAN_SHARE = 0.012


def _short(text: str, limit: int = TOOLTIP_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _colour_scale(colours: Mapping[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(colours), range=list(colours.values()))


def timeline_chart(timeline: TimelineView) -> alt.LayerChart:
    """Date on x, the view's rows in words on y (positions, or tone labelled as tone), one colour per source.

    Bands: a source's position toward the question (or its tone) over the dates its documents cover. Dots
    joined by a line: the two ends of a shift, each with its quote and the sentence saying what changed.
    """
    y = alt.Y("row:N", scale=alt.Scale(domain=timeline.rows), title=None, axis=alt.Axis(labelFontSize=12))
    colours = dict(timeline.legend)
    colour = alt.Color("name:N", scale=_colour_scale(colours), legend=alt.Legend(orient="bottom", title=None))
    band_rows = [_band_row(band, start, end) for band, start, end in _drawn_bands(timeline)]
    bands = (
        alt.Chart(alt.Data(values=band_rows))
        .mark_bar(height=12, opacity=0.35, cornerRadius=6)
        .encode(
            x=alt.X("start:T", title=None, axis=_DATE_AXIS, scale=_DATE_SCALE),
            x2="end:T",
            y=y,
            yOffset=alt.YOffset("name:N"),
            color=colour,
            tooltip=[alt.Tooltip("name:N", title="source"), alt.Tooltip("tip:N", title="over its documents")],
        )
    )
    base = alt.Chart(alt.Data(values=[_dot_row(dot) for dot in timeline.dots])).encode(
        x=alt.X("date:T", title=None, axis=_DATE_AXIS, scale=_DATE_SCALE),
        y=y,
        yOffset=alt.YOffset("name:N"),
        color=colour,
    )
    lines = base.mark_line(strokeWidth=1.5, opacity=0.8).encode(detail="shift:N", order="order:Q")
    dots = base.mark_circle(size=110, opacity=1, stroke="white", strokeWidth=1).encode(
        tooltip=[
            alt.Tooltip("name:N", title="source"),
            alt.Tooltip("date:T", format="%d %b %Y"),
            alt.Tooltip("row:N", title="position"),
            alt.Tooltip("end:N", title="shift end"),
            alt.Tooltip("change:N"),
            alt.Tooltip("quote:N"),
        ]
    )
    height = CHART_FRAME_HEIGHT + CHART_HEIGHT_PER_ROW * max(len(timeline.rows), 2)
    return alt.layer(bands, lines, dots).properties(height=height).configure_view(stroke=None)


def _drawn_bands(timeline: TimelineView) -> list[tuple[TimelineBand, str, str]]:
    """Each band with the dates to draw it between: a one-day band gets a minimum visible width."""
    days = [_ordinal(d) for b in timeline.bands for d in (b.start, b.end)]
    days += [_ordinal(dot.date) for dot in timeline.dots]
    if not days:
        return []
    minimum = max(1, round((max(days) - min(days)) * MIN_SPAN_SHARE))
    drawn = []
    for band in timeline.bands:
        start, end = _ordinal(band.start), _ordinal(band.end)
        pad = max(0, (minimum - (end - start) + 1) // 2)
        drawn.append((band, _iso(start - pad), _iso(end + pad)))
    return drawn


def _ordinal(iso: str) -> int:
    return date.fromisoformat(iso[:10]).toordinal()


def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _band_row(band: TimelineBand, start: str, end: str) -> dict[str, Any]:
    return {"name": band.name, "start": start, "end": end, "row": band.row, "tip": _short(band.tip)}


def _dot_row(dot: TimelineDot) -> dict[str, Any]:
    return {
        "name": dot.name,
        "date": dot.date,
        "row": dot.row,
        "end": dot.end,
        "order": 0 if dot.end == "before" else 1,
        "shift": dot.shift,
        "change": _short(dot.change, 160),
        "quote": _short(dot.quote),
    }


def coverage_rows(metadata: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Documents per (month, source), duplicates counted once, from `Store.document_metadata()` rows."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in metadata:
        if row.get("duplicate_of") or not row.get("date"):
            continue
        counts[(str(row["date"])[:7] + "-01", str(row["source"]))] += 1
    return [
        {"month": month, "source": source, "documents": n} for (month, source), n in sorted(counts.items())
    ]


def coverage_chart(rows: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> alt.Chart:
    """Stacked bars: documents per month, one colour per source."""
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):T", title=None),
            y=alt.Y("documents:Q", title="documents", stack=True),
            color=alt.Color("source:N", scale=_colour_scale(colours), legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                alt.Tooltip("source:N"),
                alt.Tooltip("documents:Q"),
            ],
        )
        .properties(height=220)
    )
