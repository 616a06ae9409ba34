"""The timeline of a comparison: a band per dated source, a dot per dated end of a shift, rows in words.

Bands show each source's position toward the question when the question states a proposition, else its tone
(labelled "tone: …", never read as a position). The HTML page draws it as inline SVG, the app with Altair.
"""

from __future__ import annotations

from collections.abc import Sequence

from compare.types import Comparison, SourceView
from compare.view.model import Judgement, ShiftView, SourceColumn, TimelineBand, TimelineDot, TimelineView
from compare.view.words import ROW_WORDS, as_position, clip, date_range, human_date, tone_text

TIP_QUOTE_CHARS = 280


def row_key(label: str) -> str:
    """The timeline row of a label: a position, "unsure", or a tone row."""
    if label == "unsure":
        return label
    position = as_position(label)
    return position if position else f"tone:{label}"


def row_words(key: str) -> str:
    return ROW_WORDS.get(key, key.replace("_", " "))


def ordered_rows(keys: Sequence[str]) -> list[str]:
    """The rows present, top to bottom in ROW_WORDS order (unknown rows last, alphabetically), in words."""
    present = set(keys)
    known = [key for key in ROW_WORDS if key in present]
    return [row_words(key) for key in known + sorted(present - set(ROW_WORDS))]


def build_timeline(
    comparison: Comparison, columns: Sequence[SourceColumn], shifts: Sequence[ShiftView]
) -> TimelineView:
    by_key = {column.key: column for column in columns}
    bands = [
        band
        for view in comparison.sources
        if (band := _band(view, by_key[view.source], comparison.target_is_proposition)) is not None
    ]
    dots, undated = _dots(shifts)
    return _timeline(bands, dots, undated, columns, comparison.target_is_proposition)


def _timeline(
    bands: list[tuple[str, TimelineBand]],
    dots: list[tuple[str, TimelineDot]],
    undated: int,
    columns: Sequence[SourceColumn],
    positions: bool,
) -> TimelineView:
    shown = {band.source for _, band in bands} | {dot.source for _, dot in dots}
    notes = [
        "Bands: each source's position toward the question over its documents' dates."
        if positions
        else "Bands: each source's tone over its documents' dates (tone, not a position).",
        "Dots joined by a line: the two ends of a shift.",
    ]
    if undated:
        notes.append(f"{undated} shift end(s) without a date are listed below but not drawn.")
    return TimelineView(
        rows=ordered_rows([key for key, _ in bands] + [key for key, _ in dots]),
        bands=[band for _, band in bands],
        dots=[dot for _, dot in dots],
        undated=undated,
        notes=notes,
        legend=[(c.name, c.colour) for c in columns if c.key in shown],
    )


def _band(view: SourceView, column: SourceColumn, positions: bool) -> tuple[str, TimelineBand] | None:
    start, end = view.first_date or view.last_date, view.last_date or view.first_date
    if not start or not end:
        return None
    quote = view.summary_quotes[0].text if view.summary_quotes else view.summary
    position: Judgement | None = column.position if positions else None
    key: str
    if position is not None:
        key, dashed, what = position.state, position.state == "unsure", f"position: {position.text}"
    else:
        key, dashed = row_key(view.stance.label), view.stance.low_confidence
        what = tone_text(view.stance.label, view.stance.confidence, view.stance.low_confidence)
    tip = f"{column.name}: {what}, {date_range(start, end)}\n{clip(quote, TIP_QUOTE_CHARS)}"
    band = TimelineBand(view.source, column.name, column.colour, start, end, row_words(key), dashed, tip)
    return key, band


def _dots(shifts: Sequence[ShiftView]) -> tuple[list[tuple[str, TimelineDot]], int]:
    dots: list[tuple[str, TimelineDot]] = []
    undated = 0
    for index, shift in enumerate(shifts):
        for end_name, end in (("before", shift.before), ("after", shift.after)):
            if not end.date:
                undated += 1
                continue
            key = row_key(end.label)
            tip = f"{shift.name} · {human_date(end.date)} · {end.words} ({end_name})\n“{end.quote.preview}”"
            dot = TimelineDot(
                shift.source,
                shift.name,
                shift.colour,
                end.date,
                row_words(key),
                index,
                end_name,  # type: ignore[arg-type]
                tip,
                shift.sentence,
                clip(end.quote.text, TIP_QUOTE_CHARS),
            )
            dots.append((key, dot))
    return dots, undated


def merge_timelines(timelines: Sequence[TimelineView]) -> TimelineView:
    """Bands of several comparisons on one chart (a report's overview); shifts stay in their sections."""
    bands = [band for timeline in timelines for band in timeline.bands]
    keys = {row_words(key): key for key in ROW_WORDS}
    legend = list(dict.fromkeys(pair for timeline in timelines for pair in timeline.legend))
    return TimelineView(
        rows=ordered_rows([keys.get(band.row, band.row) for band in bands]),
        bands=bands,
        dots=[],
        undated=0,
        notes=[
            "Bands: each source's position toward each question (its tone where the question states none)."
        ],
        legend=legend,
    )
