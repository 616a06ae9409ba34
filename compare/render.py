"""One Comparison -> Markdown, self-contained HTML, JSON and CSV; a quote highlighted in its paragraph.

UI-free: the Streamlit app, the CLI and batch reports all call these functions. Every string that comes from
an article or a model (quotes, titles, claims, summaries, source names, URLs) is escaped on the way out:
`html.escape` for HTML, `escape_markdown` for Markdown, a formula guard for CSV. Links are emitted only for
http(s) URLs. The HTML fragments use the `nc-` classes of `CSS`; `to_html` inlines that CSS and draws the
timeline as inline SVG, so the file opens anywhere with no network and no script.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from compare.types import Comparison, Document, Quote, Shift, SourceView, Stance

#: Stance labels from most favourable (top of a chart) to least; claim-stance labels sit beside their kin.
STANCE_ORDER = (
    "positive",
    "agree",
    "mixed",
    "discuss",
    "neutral",
    "unrelated",
    "not_addressed",
    "disagree",
    "negative",
)
#: (text colour, background) per stance label.
STANCE_COLOURS = {
    "positive": ("#116329", "#dafbe1"),
    "agree": ("#116329", "#dafbe1"),
    "negative": ("#a40e26", "#ffebe9"),
    "disagree": ("#a40e26", "#ffebe9"),
    "mixed": ("#7d4e00", "#fff8c5"),
    "neutral": ("#424a53", "#eaeef2"),
    "discuss": ("#424a53", "#eaeef2"),
    "not_addressed": ("#57606a", "#f6f8fa"),
    "unrelated": ("#57606a", "#f6f8fa"),
}
STATUS_COLOURS = {
    "verified": ("#116329", "#dafbe1"),
    "repaired": ("#7d4e00", "#fff8c5"),
    "unverified": ("#a40e26", "#ffebe9"),
}
STATUS_TEXT = {"verified": "✓ verified", "repaired": "≈ repaired", "unverified": "✗ unverified"}
#: Categorical colours (Tableau 10), one per source in order of appearance; shared with the app's charts.
SOURCE_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
KEY_QUOTES = 4
QUOTE_PREVIEW_CHARS = 220
_Scale = Callable[[str], float]  # date or stance label -> pixel
_Band = _Scale
CONTEXT_CHARS = 600

CSS = """
.nc-report{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:1400px;
  margin:0 auto;padding:16px}
.nc-report h1{font-size:1.6em;margin:0 0 .2em}.nc-report h2{margin-top:1.6em;border-bottom:1px solid #d0d7de}
.nc-meta{color:#59636e;font-size:.85em}
.nc-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}
.nc-source{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px;min-width:0;overflow-wrap:anywhere}
.nc-source h3{margin:.1em 0;font-size:1.1em}
.nc-badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:.8em;font-weight:600;
  white-space:nowrap;border:1px solid transparent}
.nc-low{border:1px dashed currentColor;font-style:italic}
.nc-summary{margin:.5em 0;font-size:.92em}
.nc-quote{margin:.45em 0;padding:4px 8px;border-left:3px solid #d0d7de;background:#f6f8fa;border-radius:4px}
.nc-quote summary{cursor:pointer;font-size:.92em;overflow-wrap:anywhere}
.nc-quote[open]{background:#fff}
.nc-context{white-space:pre-wrap;font-size:.9em;margin:.4em 0;overflow-wrap:anywhere}
.nc-context mark{background:#fff3a3;padding:0 1px}
.nc-doc{font-size:.82em;color:#59636e;overflow-wrap:anywhere}
.nc-table{border-collapse:collapse;width:100%;font-size:.9em}
.nc-table th,.nc-table td{border:1px solid #d0d7de;padding:5px 7px;vertical-align:top;text-align:left;
  overflow-wrap:break-word}
.nc-table th{background:#f6f8fa;overflow-wrap:normal}
.nc-yes{background:#dafbe1;text-align:center!important;white-space:nowrap}
.nc-no{background:#fff1e5;text-align:center!important;white-space:nowrap;color:#953800}
.nc-shift{border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;margin:.5em 0}
.nc-ba{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.nc-swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px}
"""


# -- escaping -----------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~&#!{}])")


def esc(text: object) -> str:
    """HTML-escape anything (quotes included), for text and attribute values alike."""
    return html.escape("" if text is None else str(text), quote=True)


def escape_markdown(text: object) -> str:
    """Markdown-escape one line of untrusted text: no links, images, HTML, math, tables or emphasis survive."""
    flat = " ".join(("" if text is None else str(text)).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", flat)
    return re.sub(r"^([-+]|\d+[.)])(\s)", r"\\\1\2", escaped)  # not a list item


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host, else None (no javascript:, data: or relative links)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def csv_safe(value: object) -> object:
    """Spreadsheet formula guard: a text cell starting with = + - @ or a control character is prefixed."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# -- quotes in context ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """A quote's paragraph split around the quoted span; `cut_*` says whether the paragraph was shortened."""

    before: str
    span: str
    after: str
    cut_before: bool
    cut_after: bool


def quote_context(document_text: str, start: int, end: int, *, max_chars: int = CONTEXT_CHARS) -> Context:
    """The paragraph around text[start:end], at most `max_chars` either side (cut at a word boundary)."""
    if not 0 <= start <= end <= len(document_text):
        raise ValueError(f"span {start}:{end} is outside a text of {len(document_text)} characters")
    para_start = document_text.rfind("\n", 0, start) + 1
    para_end = document_text.find("\n", end)
    para_end = len(document_text) if para_end < 0 else para_end
    before, cut_before = _clip_left(document_text[para_start:start], max_chars)
    after, cut_after = _clip_right(document_text[end:para_end], max_chars)
    return Context(before, document_text[start:end], after, cut_before, cut_after)


def _clip_left(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    tail = text[-limit:]
    space = tail.find(" ")
    return (tail[space + 1 :] if 0 <= space < limit // 2 else tail), True


def _clip_right(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head), True


def highlight_in_context(document_text: str, start: int, end: int, *, max_chars: int = CONTEXT_CHARS) -> str:
    """Escaped HTML of the quote's paragraph with the quoted span in <mark>."""
    ctx = quote_context(document_text, start, end, max_chars=max_chars)
    return (
        f'<p class="nc-context">{"… " if ctx.cut_before else ""}{esc(ctx.before)}'
        f"<mark>{esc(ctx.span)}</mark>{esc(ctx.after)}{' …' if ctx.cut_after else ''}</p>"
    )


# -- walking a comparison ---------------------------------------------------------------------------------


def quote_doc_ids(comparison: Comparison) -> list[str]:
    """Ids of the documents the comparison quotes: what to load to show quotes in context."""
    return sorted({quote.doc_id for quote in comparison.presented_quotes()})


def unique_quotes(quotes: Iterable[Quote]) -> list[Quote]:
    seen: set[tuple[str, int, int]] = set()
    kept: list[Quote] = []
    for quote in quotes:
        key = (quote.doc_id, quote.char_start, quote.char_end)
        if key not in seen:
            seen.add(key)
            kept.append(quote)
    return kept


def key_quotes(view: SourceView, limit: int = KEY_QUOTES) -> list[Quote]:
    """The quotes to show under a source: its summary quotes, then its claims' quotes, no repeats."""
    quotes = [*view.summary_quotes, *(q for claim in view.claims for q in claim.quotes)]
    return unique_quotes(q for q in quotes if q.status != "unverified")[:limit]


def source_colours(sources: Sequence[str]) -> dict[str, str]:
    return {source: SOURCE_PALETTE[i % len(SOURCE_PALETTE)] for i, source in enumerate(sources)}


def source_names(comparison: Comparison) -> list[str]:
    return [view.source for view in comparison.sources]


def quote_counts(comparison: Comparison, source: str) -> dict[str, int]:
    """Distinct quoted spans of one source, per status."""
    counts = {"verified": 0, "repaired": 0, "unverified": 0}
    for quote in unique_quotes(q for q in comparison.presented_quotes() if q.source == source):
        counts[quote.status] += 1
    return counts


# -- the timeline -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    """One end of a shift: a dated stance backed by a quote."""

    source: str
    date: str
    stance: str
    quote: str
    doc_id: str
    shift: int
    end: str  # "before" | "after"
    description: str


@dataclass(frozen=True)
class StanceSpan:
    """A source's overall stance over the dates its documents cover."""

    source: str
    start: str
    end: str
    stance: str
    confidence: float
    low_confidence: bool
    quote: str


def timeline_points(comparison: Comparison) -> tuple[list[TimelinePoint], int]:
    """The dated ends of every shift, and how many ends have no date (they cannot be placed)."""
    points: list[TimelinePoint] = []
    undated = 0
    for index, shift in enumerate(comparison.shifts):
        for end, point in (("before", shift.before), ("after", shift.after)):
            day = point.date or point.quote.date
            if not day:
                undated += 1
                continue
            points.append(
                TimelinePoint(
                    shift.source,
                    day,
                    point.stance,
                    point.quote.text,
                    point.quote.doc_id,
                    index,
                    end,
                    shift.description,
                )
            )
    return points, undated


def stance_spans(comparison: Comparison) -> list[StanceSpan]:
    """Each dated source's overall stance from its first to its last document date."""
    spans = []
    for view in comparison.sources:
        start, end = view.first_date or view.last_date, view.last_date or view.first_date
        if start and end:
            quote = view.summary_quotes[0].text if view.summary_quotes else view.summary
            stance = view.stance
            spans.append(
                StanceSpan(
                    view.source, start, end, stance.label, stance.confidence, stance.low_confidence, quote
                )
            )
    return spans


def stance_domain(labels: Iterable[str]) -> list[str]:
    """The labels present, in STANCE_ORDER (unknown labels last, alphabetically)."""
    present = set(labels)
    known = [label for label in STANCE_ORDER if label in present]
    return known + sorted(present - set(STANCE_ORDER))


def timeline_svg(comparison: Comparison, *, width: int = 960) -> str:
    """The timeline as inline SVG: overall stance spans as bands, shifts as dots joined before -> after."""
    points, _ = timeline_points(comparison)
    spans = stance_spans(comparison)
    if not points and not spans:
        return '<p class="nc-meta">No dated stance to place on a timeline.</p>'
    domain = stance_domain([p.stance for p in points] + [s.stance for s in spans])
    days = [_day(p.date) for p in points] + [_day(d) for s in spans for d in (s.start, s.end)]
    low, high = min(days), max(days)
    left, right, top, row = 110, 44, 16, 44
    height = top + row * len(domain) + 40
    colours = source_colours(source_names(comparison))

    def x(day: str) -> float:
        span = max(high - low, 1)
        return left + (_day(day) - low) / span * (width - left - right)

    def y(label: str) -> float:
        return top + row * domain.index(label) + row / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="stance over time" class="nc-timeline">'
    ]
    parts += _svg_axes(domain, low, high, x, y, width, height, left, right)
    parts += _svg_spans(spans, colours, x, y)
    parts += _svg_shifts(points, colours, x, y)
    parts.append("</svg>")
    legend = " ".join(
        f'<span><span class="nc-swatch" style="background:{c}"></span>{esc(s)}</span>'
        for s, c in colours.items()
    )
    return "".join(parts) + f'<div class="nc-meta">{legend}</div>'


def _day(iso: str) -> int:
    return date.fromisoformat(iso[:10]).toordinal()


def _svg_axes(
    domain: list[str],
    low: int,
    high: int,
    x: _Scale,
    y: _Band,
    width: int,
    height: int,
    left: int,
    right: int,
) -> list[str]:
    out = []
    for label in domain:
        out.append(
            f'<text x="{left - 8}" y="{y(label) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#424a53">{esc(label.replace("_", " "))}</text>'
        )
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(label):.1f}" y2="{y(label):.1f}" '
            'stroke="#eaeef2"/>'
        )
    for tick in _ticks(low, high):
        iso = date.fromordinal(tick).isoformat()
        out.append(
            f'<text x="{x(iso):.1f}" y="{height - 12}" text-anchor="middle" font-size="11" '
            f'fill="#59636e">{iso[:7]}</text>'
        )
    return out


def _ticks(low: int, high: int, count: int = 6) -> list[int]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [round(low + i * step) for i in range(count)]


def _svg_spans(spans: list[StanceSpan], colours: dict[str, str], x: _Scale, y: _Band) -> list[str]:
    out = []
    for span in spans:
        x1, x2 = x(span.start), max(x(span.end), x(span.start) + 6)
        tip = f"{span.source}: {span.stance} ({span.confidence:.2f}) {span.start} – {span.end}\n{span.quote}"
        dash = ' stroke-dasharray="4 3"' if span.low_confidence else ""
        out.append(
            f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y(span.stance):.1f}" y2="{y(span.stance):.1f}" '
            f'stroke="{colours[span.source]}" stroke-width="9" stroke-opacity="0.35" '
            f'stroke-linecap="round"{dash}><title>{esc(tip)}</title></line>'
        )
    return out


def _svg_shifts(points: list[TimelinePoint], colours: dict[str, str], x: _Scale, y: _Band) -> list[str]:
    out = []
    by_shift: dict[int, list[TimelinePoint]] = {}
    for point in points:
        by_shift.setdefault(point.shift, []).append(point)
    for pair in by_shift.values():
        if len(pair) == 2:
            a, b = pair
            out.append(
                f'<line x1="{x(a.date):.1f}" y1="{y(a.stance):.1f}" x2="{x(b.date):.1f}" '
                f'y2="{y(b.stance):.1f}" stroke="{colours[a.source]}" stroke-width="1.5"/>'
            )
    for point in points:
        tip = f"{point.source} · {point.date} · {point.stance} ({point.end})\n“{point.quote}”"
        out.append(
            f'<circle cx="{x(point.date):.1f}" cy="{y(point.stance):.1f}" r="6" '
            f'fill="{colours[point.source]}" stroke="#fff"><title>{esc(tip)}</title></circle>'
        )
    return out


# -- HTML fragments (shared by the app and the HTML report) -------------------------------------------------


def _badge(text: str, colours: tuple[str, str], extra: str = "") -> str:
    fg, bg = colours
    return f'<span class="nc-badge {extra}" style="color:{fg};background:{bg}">{esc(text)}</span>'


def stance_badge_html(stance: Stance) -> str:
    """Label and confidence; a low-confidence stance is dashed and says so instead of passing as a verdict."""
    label = stance.label.replace("_", " ")
    colours = STANCE_COLOURS.get(stance.label, STANCE_COLOURS["neutral"])
    if stance.low_confidence:
        return _badge(f"{label}? · low confidence {stance.confidence:.2f}", colours, "nc-low")
    return _badge(f"{label} · {stance.confidence:.2f}", colours)


def status_badge_html(status: str) -> str:
    return _badge(STATUS_TEXT.get(status, status), STATUS_COLOURS.get(status, STATUS_COLOURS["unverified"]))


def document_line_html(document: Document | None, quote: Quote) -> str:
    """Title, date and link of a quote's document (escaped; links only for http(s))."""
    if document is None:
        return f'<div class="nc-doc">document {esc(quote.doc_id)} is no longer in the store</div>'
    title = esc(document.title or document.id)
    url = safe_url(document.url)
    title_html = (
        f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{title}</a>' if url else title
    )
    return (
        f'<div class="nc-doc">{title_html} · {esc(document.date or "undated")} · {esc(document.source)}'
        f" · <code>{esc(document.id)}</code> [{quote.char_start}:{quote.char_end}]</div>"
    )


def quote_html(quote: Quote, documents: Mapping[str, Document] | None = None) -> str:
    """A quote with its status badge; expands to its paragraph with the span highlighted, title, date, link."""
    document = (documents or {}).get(quote.doc_id)
    context = (
        highlight_in_context(document.text, quote.char_start, quote.char_end)
        if document is not None and quote.char_end <= len(document.text)
        else ""
    )
    when = f' <span class="nc-meta">{esc(quote.date)}</span>' if quote.date else ""
    return (
        f'<details class="nc-quote"><summary>{status_badge_html(quote.status)} “{esc(clip(quote.text))}”{when}'
        f"</summary>{context}{document_line_html(document, quote)}</details>"
    )


def clip(text: str, limit: int = QUOTE_PREVIEW_CHARS) -> str:
    """At most `limit` characters, cut at a word boundary, with … when cut (the full text is in context)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + " …"


def breakable(name: str) -> str:
    """An escaped identifier that may wrap after _ - . (long source keys in narrow table headers)."""
    return re.sub(r"([_\-./])", r"\1<wbr>", esc(name))


def source_body_html(view: SourceView, documents: Mapping[str, Document] | None = None) -> str:
    """A source's card body: outlet, dates, stance badge, summary and key quotes."""
    dates = f"{view.first_date or 'undated'} – {view.last_date or 'undated'}"
    quotes = key_quotes(view)
    return (
        f'<div class="nc-meta">{esc(view.outlet or view.source)}</div>'
        f'<div class="nc-meta">{esc(dates)} · {plural(len(view.documents), "document")}</div>'
        f'<div style="margin:.4em 0">{stance_badge_html(view.stance)}'
        f' <span class="nc-meta">toward “{esc(view.stance.target)}”</span></div>'
        + _summary_html(view)
        + "".join(quote_html(quote, documents) for quote in quotes)
        + ("" if quotes else '<div class="nc-meta">no verified quote</div>')
    )


def summary_is_quotes(view: SourceView) -> bool:
    """True when the summary is only the summary quotes joined (extractive): show the quotes, not both."""
    return view.summary.strip() == " … ".join(q.text for q in view.summary_quotes).strip()


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary_html(view: SourceView) -> str:
    """The summary, unless it is only the summary quotes joined (they follow, with their badges)."""
    if summary_is_quotes(view):
        return '<div class="nc-meta" style="margin-top:.5em">Key quotes</div>'
    return f'<div class="nc-summary">{esc(view.summary) or "<i>no summary</i>"}</div>'


def source_card_html(view: SourceView, documents: Mapping[str, Document] | None = None) -> str:
    return f'<div class="nc-source"><h3>{esc(view.source)}</h3>{source_body_html(view, documents)}</div>'


def shifts_html(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """Each shift: source, topic, what changed, and the before/after quotes side by side."""
    if not comparison.shifts:
        return '<p class="nc-meta">No shift found in the retrieved passages.</p>'
    cards = []
    for shift in comparison.shifts:
        halves = []
        for name, point in (("before", shift.before), ("after", shift.after)):
            label = STANCE_COLOURS.get(point.stance, STANCE_COLOURS["neutral"])
            halves.append(
                f'<div><div class="nc-meta">{name} · {esc(point.date or point.quote.date or "undated")} '
                f"{_badge(point.stance.replace('_', ' '), label)}</div>{quote_html(point.quote, documents)}</div>"
            )
        cues = f" · cues: {esc(', '.join(shift.cues))}" if shift.cues else ""
        cards.append(
            f'<div class="nc-shift"><b>{esc(shift.source)}</b> — {esc(shift.description)}'
            f'<div class="nc-meta">on “{esc(shift.topic)}” · evidence {shift.score:.2f}{cues}</div>'
            f'<div class="nc-ba">{"".join(halves)}</div></div>'
        )
    return "".join(cards)


def _quote_list_html(quotes: Sequence[Quote], documents: Mapping[str, Document] | None) -> str:
    return "".join(quote_html(q, documents) for q in quotes) or '<span class="nc-meta">—</span>'


def agreements_html(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    if not comparison.agreements:
        return '<p class="nc-meta">No claim shared by several sources.</p>'
    rows = "".join(
        f"<tr><td>{esc(a.claim)}</td><td>{', '.join(breakable(s) for s in a.sources)}</td>"
        f"<td>{_quote_list_html(a.quotes, documents)}</td></tr>"
        for a in comparison.agreements
    )
    return (
        '<table class="nc-table"><thead><tr><th style="width:32%">claim</th><th style="width:14%">sources</th>'
        f"<th>quotes</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def differences_html(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """One row per claim, one column per source: its position and quote."""
    if not comparison.differences:
        return '<p class="nc-meta">No claim on which the sources take different positions.</p>'
    sources = source_names(comparison)
    head = "".join(f"<th>{breakable(s)}</th>" for s in sources)
    rows = []
    for difference in comparison.differences:
        by_source = {p.source: p for p in difference.positions}
        cells = []
        for source in sources:
            position = by_source.get(source)
            if position is None:
                cells.append('<td class="nc-meta">—</td>')
                continue
            colours = STANCE_COLOURS.get(position.position, STANCE_COLOURS["neutral"])
            badge = _badge(position.position.replace("_", " "), colours)
            cells.append(f"<td>{badge}{_quote_list_html(position.quotes, documents)}</td>")
        rows.append(f"<tr><td>{esc(difference.claim)}</td>{''.join(cells)}</tr>")
    return (
        f'<table class="nc-table"><thead><tr><th style="width:24%">claim</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def omission_matrix_html(comparison: Comparison) -> str:
    """Claims x sources: reported or not reported, as a grid."""
    if not comparison.omissions:
        return '<p class="nc-meta">No claim that some sources report and others leave out.</p>'
    sources = source_names(comparison)
    head = "".join(f"<th>{breakable(s)}</th>" for s in sources)
    rows = []
    for omission in comparison.omissions:
        cells = "".join(
            _omission_cell(source, omission.reported_by, omission.not_reported_by) for source in sources
        )
        rows.append(f"<tr><td>{esc(omission.claim)}</td>{cells}</tr>")
    return (
        f'<table class="nc-table"><thead><tr><th style="width:40%">claim</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _omission_cell(source: str, reported: Sequence[str], not_reported: Sequence[str]) -> str:
    if source in reported:
        return '<td class="nc-yes">● reported</td>'
    if source in not_reported:
        return '<td class="nc-no">○ not reported</td>'
    return '<td class="nc-meta" style="text-align:center">—</td>'


def omission_rows(comparison: Comparison) -> list[dict[str, str]]:
    """The omission matrix as rows (claim + one column per source), for tables and CSV."""
    sources = source_names(comparison)
    rows = []
    for omission in comparison.omissions:
        row = {"claim": omission.claim}
        for source in sources:
            row[source] = (
                "reported"
                if source in omission.reported_by
                else "not reported"
                if source in omission.not_reported_by
                else ""
            )
        rows.append(row)
    return rows


def meta_line(comparison: Comparison) -> str:
    """Plain text: how the result was made (backend, model, prompt, settings hash, version, time)."""
    meta = comparison.meta
    parts = [f"backend {meta.backend}"]
    parts += [f"model {meta.model}"] if meta.model else []
    parts += [f"prompt {meta.prompt}"] if meta.prompt else []
    parts += [f"settings {meta.settings_hash}", f"narrative-compare {meta.package_version}"]
    parts += [f"{meta.latency_s:.2f} s"] if meta.latency_s else []
    parts += [f"{meta.tokens_in}+{meta.tokens_out} tokens, ${meta.cost_usd:.4f}"] if meta.tokens_in else []
    parts += [meta.created_at] if meta.created_at else []
    return " · ".join(parts)


def filters_line(comparison: Comparison) -> str:
    """Plain text summary of the filters a comparison was made with ('' when none)."""
    f = comparison.filters
    parts = []
    if f.get("sources"):
        parts.append("sources: " + ", ".join(map(str, f["sources"])))  # type: ignore[call-overload]
    if f.get("since") or f.get("until"):
        parts.append(f"dates: {f.get('since') or '…'} – {f.get('until') or '…'}")
    where = f.get("where") or {}
    if isinstance(where, dict) and where:
        parts.append("where " + ", ".join(f"{k}={v}" for k, v in where.items()))
    return "; ".join(parts)


# -- whole documents ----------------------------------------------------------------------------------------


def to_html(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """A self-contained HTML page: inline CSS, inline SVG timeline, no script, no external resource."""
    filters = filters_line(comparison)
    sections = [
        f"<h1>{esc(comparison.question)}</h1>",
        f'<div class="nc-meta">stance toward “{esc(comparison.target)}”'
        f"{' · ' + esc(filters) if filters else ''}</div>",
        f'<div class="nc-meta">{esc(meta_line(comparison))}</div>',
        *[f'<p class="nc-meta">⚠ {esc(w)}</p>' for w in comparison.meta.warnings],
        "<h2>Sources side by side</h2>",
        '<div class="nc-grid">'
        + "".join(source_card_html(v, documents) for v in comparison.sources)
        + "</div>",
        "<h2>Change over time</h2>",
        timeline_svg(comparison),
        shifts_html(comparison, documents),
        "<h2>Agreements</h2>",
        agreements_html(comparison, documents),
        "<h2>Differences</h2>",
        differences_html(comparison, documents),
        "<h2>Omissions</h2>",
        omission_matrix_html(comparison),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<title>{esc(comparison.question)} — narrative-compare</title><style>{CSS}</style></head>"
        f'<body><main class="nc-report">{"".join(sections)}</main></body></html>\n'
    )


def to_json(comparison: Comparison) -> str:
    return comparison.model_dump_json(indent=2)


CSV_FIELDS = (
    "source",
    "outlet",
    "first_date",
    "last_date",
    "documents",
    "stance",
    "stance_target",
    "confidence",
    "low_confidence",
    "quotes_verified",
    "quotes_repaired",
    "shifts",
    "question",
    "backend",
    "settings_hash",
    "package_version",
    "created_at",
)


def csv_rows(comparison: Comparison) -> list[dict[str, object]]:
    """One row per source: stance, confidence, quote counts, shift count, and how the result was made."""
    rows: list[dict[str, object]] = []
    for view in comparison.sources:
        counts = quote_counts(comparison, view.source)
        rows.append(
            {
                "source": view.source,
                "outlet": view.outlet or "",
                "first_date": view.first_date or "",
                "last_date": view.last_date or "",
                "documents": len(view.documents),
                "stance": view.stance.label,
                "stance_target": view.stance.target,
                "confidence": round(view.stance.confidence, 3),
                "low_confidence": view.stance.low_confidence,
                "quotes_verified": counts["verified"],
                "quotes_repaired": counts["repaired"],
                "shifts": sum(1 for s in comparison.shifts if s.source == view.source),
                "question": comparison.question,
                "backend": comparison.meta.backend,
                "settings_hash": comparison.meta.settings_hash,
                "package_version": comparison.meta.package_version,
                "created_at": comparison.meta.created_at,
            }
        )
    return rows


def to_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(comparison):
        writer.writerow({key: csv_safe(value) for key, value in row.items()})
    return buffer.getvalue()


def to_markdown(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """A Markdown report; article and model text is escaped so no link, image or HTML in it renders."""
    md = escape_markdown
    lines = [f"# {md(comparison.question)}", "", f"Stance toward: {md(comparison.target)}  "]
    if filters := filters_line(comparison):
        lines.append(f"Filters: {md(filters)}  ")
    lines += [f"_{md(meta_line(comparison))}_", ""]
    lines += [f"> Warning: {md(w)}" for w in comparison.meta.warnings]
    lines += ["## Sources side by side", ""]
    for view in comparison.sources:
        lines += _markdown_source(view, documents)
    lines += ["## Change over time", ""]
    lines += [_markdown_shift(s) for s in comparison.shifts] or ["No shift found in the retrieved passages."]
    lines += ["", "## Agreements", ""]
    lines += [
        f"- {md(a.claim)} — {md(', '.join(a.sources))}"
        + "".join(f"\n  - {_markdown_quote(q)}" for q in a.quotes)
        for a in comparison.agreements
    ] or ["None."]
    lines += ["", "## Differences", ""]
    for difference in comparison.differences:
        lines.append(f"- {md(difference.claim)}")
        lines += [
            f"  - {md(p.source)}: **{md(p.position)}**"
            + "".join(f" {_markdown_quote(q)}" for q in p.quotes[:1])
            for p in difference.positions
        ]
    lines += [] if comparison.differences else ["None."]
    lines += ["", "## Omissions", "", *_markdown_matrix(comparison), ""]
    return "\n".join(lines) + "\n"


def _markdown_source(view: SourceView, documents: Mapping[str, Document] | None) -> list[str]:
    md = escape_markdown
    stance = view.stance
    low = " (low confidence)" if stance.low_confidence else ""
    lines = [
        f"### {md(view.source)}" + (f" — {md(view.outlet)}" if view.outlet else ""),
        "",
        f"- Dates: {view.first_date or 'undated'} – {view.last_date or 'undated'}, "
        f"{plural(len(view.documents), 'document')}",
        f"- Stance: **{md(stance.label)}**{low}, confidence {stance.confidence:.2f}, toward {md(stance.target)}",
        "",
        "Key quotes:" if summary_is_quotes(view) else (md(view.summary) or "_no summary_"),
        "",
    ]
    for quote in key_quotes(view):
        document = (documents or {}).get(quote.doc_id)
        title = f" — {md(document.title)}" if document is not None and document.title else ""
        url = safe_url(document.url) if document is not None else None
        link = f" <{url}>" if url and not re.search(r"[\s<>]", url) else ""
        lines.append(f"> {_markdown_quote(quote)}{title}{link}")
        lines.append("")
    return lines


def _markdown_quote(quote: Quote) -> str:
    where = f"{quote.doc_id} [{quote.char_start}:{quote.char_end}]"
    return f"“{escape_markdown(quote.text)}” ({quote.status}, {quote.date or 'undated'}, {escape_markdown(where)})"


def _markdown_shift(shift: Shift) -> str:
    md = escape_markdown
    before, after = shift.before, shift.after
    return (
        f"- **{md(shift.source)}** — {md(shift.description)}\n"
        f"  - before ({before.date or before.quote.date or 'undated'}, {before.stance}): "
        f"{_markdown_quote(before.quote)}\n"
        f"  - after ({after.date or after.quote.date or 'undated'}, {after.stance}): {_markdown_quote(after.quote)}"
    )


def _markdown_matrix(comparison: Comparison) -> list[str]:
    rows = omission_rows(comparison)
    if not rows:
        return ["None."]
    sources = source_names(comparison)
    header = "| claim | " + " | ".join(escape_markdown(s) for s in sources) + " |"
    rule = "|---|" + "---|" * len(sources)
    body = [
        f"| {escape_markdown(row['claim'])} | " + " | ".join(row[s] or "—" for s in sources) + " |"
        for row in rows
    ]
    return [header, rule, *body]
