"""Altair charts for the app: stance over time, and corpus coverage over time.

Data comes from `compare.render` (timeline points and stance spans) and from the store's document metadata;
colours are `render.source_colours`, so the app, the HTML report and the legend agree. Vega-Lite renders
tooltips as text, so quotes in tooltips need no escaping here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import altair as alt

from compare.render import StanceSpan, TimelinePoint, stance_domain

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


def timeline_chart(
    points: Sequence[TimelinePoint], spans: Sequence[StanceSpan], colours: Mapping[str, str]
) -> alt.LayerChart:
    """Date on x, stance on y, one colour per source.

    Bands: a source's overall stance over the dates its documents cover. Dots joined by a line: the two ends
    of a shift, each with its quote in the tooltip.
    """
    domain = stance_domain([p.stance for p in points] + [s.stance for s in spans])
    y = alt.Y("stance:N", scale=alt.Scale(domain=domain), title=None, axis=alt.Axis(labelFontSize=12))
    colour = alt.Color(
        "source:N", scale=_colour_scale(colours), legend=alt.Legend(orient="bottom", title=None)
    )
    band_rows = [_span_row(span, start, end) for span, start, end in _drawn_spans(spans, points)]
    point_rows = [_point_row(point) for point in points]
    bands = (
        alt.Chart(alt.Data(values=band_rows))
        .mark_bar(height=12, opacity=0.35, cornerRadius=6)
        .encode(
            x=alt.X("start:T", title=None, axis=_DATE_AXIS, scale=_DATE_SCALE),
            x2="end:T",
            y=y,
            yOffset=alt.YOffset("source:N"),
            color=colour,
            tooltip=[
                alt.Tooltip("source:N"),
                alt.Tooltip("stance:N", title="overall stance"),
                alt.Tooltip("confidence:Q", format=".2f"),
                alt.Tooltip("dates:N"),
                alt.Tooltip("quote:N"),
            ],
        )
    )
    base = alt.Chart(alt.Data(values=point_rows)).encode(
        x=alt.X("date:T", title=None, axis=_DATE_AXIS, scale=_DATE_SCALE),
        y=y,
        yOffset=alt.YOffset("source:N"),
        color=colour,
    )
    lines = base.mark_line(strokeWidth=1.5, opacity=0.8).encode(detail="shift:N", order="order:Q")
    dots = base.mark_circle(size=110, opacity=1, stroke="white", strokeWidth=1).encode(
        tooltip=[
            alt.Tooltip("source:N"),
            alt.Tooltip("date:T", format="%Y-%m-%d"),
            alt.Tooltip("stance:N"),
            alt.Tooltip("end:N", title="shift end"),
            alt.Tooltip("change:N"),
            alt.Tooltip("quote:N"),
        ]
    )
    height = CHART_FRAME_HEIGHT + CHART_HEIGHT_PER_ROW * max(len(domain), 2)
    return alt.layer(bands, lines, dots).properties(height=height).configure_view(stroke=None)


def _drawn_spans(
    spans: Sequence[StanceSpan], points: Sequence[TimelinePoint]
) -> list[tuple[StanceSpan, str, str]]:
    """Each span with the dates to draw it between: a one-day span gets a minimum visible width."""
    days = [_ordinal(d) for s in spans for d in (s.start, s.end)] + [_ordinal(p.date) for p in points]
    if not days:
        return []
    minimum = max(1, round((max(days) - min(days)) * MIN_SPAN_SHARE))
    drawn = []
    for span in spans:
        start, end = _ordinal(span.start), _ordinal(span.end)
        pad = max(0, (minimum - (end - start) + 1) // 2)
        drawn.append((span, _iso(start - pad), _iso(end + pad)))
    return drawn


def _ordinal(iso: str) -> int:
    return date.fromisoformat(iso[:10]).toordinal()


def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _span_row(span: StanceSpan, start: str, end: str) -> dict[str, Any]:
    low = " (low confidence)" if span.low_confidence else ""
    return {
        "source": span.source,
        "start": start,
        "end": end,
        "stance": span.stance,
        "confidence": span.confidence,
        "dates": f"{span.start} – {span.end}{low}",
        "quote": _short(span.quote),
    }


def _point_row(point: TimelinePoint) -> dict[str, Any]:
    return {
        "source": point.source,
        "date": point.date,
        "stance": point.stance,
        "end": point.end,
        "order": 0 if point.end == "before" else 1,
        "shift": point.shift,
        "change": _short(point.description, 120),
        "quote": _short(point.quote),
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
