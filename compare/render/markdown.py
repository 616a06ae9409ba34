"""Markdown of a comparison view. Article and model text is escaped so no link, image, HTML or math renders."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from compare.view.model import ComparisonView, Judgement, QuoteView, Section, SourceColumn

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~&#!{}])")


#: "https://…", "ftp://…", "www.…", "x@y.org": what GFM's autolink extension turns into links. An escaped
#: character ("https\\://", "www\\.", "x\\@y") renders the same text and is not linked.
_BARE_LINK = re.compile(r"(?i)(\b(?:https?|ftp)|\bwww|\b[\w.+-]+)(:(?=//)|\.(?=\w)(?<=www\.)|@(?=[\w-]+\.))")


def escape_markdown(text: object) -> str:
    """Markdown-escape one line of untrusted text: no links, images, HTML, math, tables or emphasis survive."""
    flat = " ".join(("" if text is None else str(text)).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", flat)
    escaped = _BARE_LINK.sub(r"\1\\\2", escaped)  # GFM would link a bare URL from an article: break it
    return re.sub(r"^([-+]|\d+[.)])(\s)", r"\\\1\2", escaped)  # not a list item


md = escape_markdown


def quote_md(quote: QuoteView) -> str:
    """A quote inline: its text, status, date and where it sits."""
    return f"“{md(quote.preview)}” ({quote.status_text}, {quote.date_text or 'undated'}, {md(quote.where)})"


def autolink(url: str | None) -> str:
    """ " <url>" for an http(s) URL that cannot break out of an autolink; "" otherwise."""
    return f" <{url}>" if url and not re.search(r"[\s<>]", url) else ""


def _document_md(quote: QuoteView) -> str:
    document = quote.document
    if document is None or document.missing:
        return ""
    return f" — {md(document.title)}{autolink(document.url)}"


def judgement_md(judgement: Judgement) -> str:
    text = f"**{md(judgement.text)}**" if judgement.state != "unsure" else md(judgement.text)
    return text + (f" ({md(judgement.detail)})" if judgement.detail else "") + check_md(judgement.check_text)


def check_md(text: str) -> str:
    """A contested label's note after it ("" when none)."""
    return f" — {md(text)}" if text else ""


def comparison_markdown(view: ComparisonView) -> str:
    lines = [f"# {md(view.question)}", "", *header_md(view), *body_md(view, 2)]
    return "\n".join(lines).rstrip() + "\n"


def header_md(view: ComparisonView) -> list[str]:
    footer = view.footer
    lines = [f"{md(view.target_line)}  "]
    lines += [f"Filters: {md(footer.filters_line)}  "] if footer.filters_line else []
    labels = f" · {md(footer.labels_line)}" if footer.labels_line else ""
    lines += [f"_{md(footer.meta_line)} · {md(footer.quotes_line)}{labels}_", ""]
    lines += [f"> Warning: {md(w)}" for w in footer.warnings]
    if footer.missing_sources:
        lines.append(f"> No passage matched the question in: {md(', '.join(footer.missing_sources))}")
    return [*lines, ""] if footer.warnings or footer.missing_sources else lines


def body_md(view: ComparisonView, level: int, skip: Sequence[str] = ()) -> list[str]:
    """Every section in the view's order, headings at `level` (2 for a page, 3 inside a report)."""
    lines: list[str] = []
    for section in (s for s in view.sections if s.key not in skip):
        lines += [f"{'#' * level} {section.title}", ""]
        lines += [f"_{md(section.note)}_", ""] if section.note else []
        lines += _section_md(view, section, level + 1)
        lines.append("")
    return lines


def _section_md(view: ComparisonView, section: Section, level: int) -> list[str]:
    if section.empty:
        return [section.empty]
    writers: dict[str, Callable[[ComparisonView, int], list[str]]] = {
        "answer": _answer_md,
        "sources": _sources_md,
        "claims": _claims_md,
        "time": _shifts_md,
        "agreements": _agreements_md,
        "differences": _differences_md,
        "omissions": _omissions_md,
    }
    return writers[section.key](view, level)


def _answer_md(view: ComparisonView, level: int) -> list[str]:
    lines = []
    for line in view.answer:
        lines.append(f"- {md(line.text)}")
        lines += [f"  - {quote_md(q)}" for q in line.quotes]
    return lines


def _sources_md(view: ComparisonView, level: int) -> list[str]:
    return [line for column in view.columns for line in _column_md(column, level)]


def _column_md(column: SourceColumn, level: int) -> list[str]:
    key = f" ({md(column.key)})" if column.show_key else ""
    lines = [
        f"{'#' * level} {md(column.name)}{key}",
        "",
        f"- Documents: {column.documents_text}, {column.dates_text}",
    ]
    if column.position is not None:
        lines.append(f"- Position: {judgement_md(column.position)}")
        lines += [f"  - {quote_md(column.position.quote)}"] if column.position.quote else []
    lines += [f"- {md(column.tone_text)}", "", md(column.summary) if column.summary else "Key quotes:", ""]
    for quote in column.quotes:
        lines += [f"> {quote_md(quote)}{_document_md(quote)}", ""]
    return lines


def _claims_md(view: ComparisonView, level: int) -> list[str]:
    lines = []
    for row in view.claims:
        lines.append(f"- {row.heading}: {md(row.text)}")
        lines += [f"  - stated in {quote_md(row.origin)}"] if row.origin else []
        for column, cell in zip(view.columns, row.cells):
            quote = f" — {quote_md(cell.quote)}" if cell.quote else ""
            lines.append(f"  - {md(column.name)}: {judgement_md(cell)}{quote}")
    return lines


def _shifts_md(view: ComparisonView, level: int) -> list[str]:
    lines = []
    for shift in view.shifts:
        meta = ", ".join(x for x in (shift.kind_text, shift.confidence_text) if x)
        lines.append(f"- **{md(shift.name)}** {md(shift.sentence)} ({md(meta)}){check_md(shift.check_text)}")
        for name, end in (("before", shift.before), ("after", shift.after)):
            when = ", ".join(x for x in (end.date_text, end.words) if x)
            lines.append(f"  - {name} ({md(when)}): {quote_md(end.quote)}")
    return lines


def _agreements_md(view: ComparisonView, level: int) -> list[str]:
    lines = []
    for agreement in view.agreements:
        confidence = f" ({agreement.confidence_text})" if agreement.confidence_text else ""
        check = check_md(agreement.check_text)
        lines.append(f"- {md(agreement.claim)} — {md(agreement.sources_text)}{confidence}{check}")
        lines += [f"  - {quote_md(q)}" for q in agreement.quotes]
    return lines


def _differences_md(view: ComparisonView, level: int) -> list[str]:
    lines = []
    for difference in view.differences:
        meta = ", ".join(x for x in (difference.strength_text, difference.confidence_text) if x)
        lines.append(f"- {md(difference.claim)} ({md(meta)})")
        lines += [
            f"  - {md(side.name)}: **{md(side.words)}**{check_md(side.check_text)}"
            + "".join(f" {quote_md(q)}" for q in side.quotes[:1])
            for side in difference.sides
        ]
    return lines


def _omissions_md(view: ComparisonView, level: int) -> list[str]:
    header = "| claim | " + " | ".join(md(c.name) for c in view.columns) + " |"
    rule = "|---|" + "---|" * len(view.columns)
    body = [
        f"| {md(row.claim)} | " + " | ".join(md(cell.text) for cell in row.cells) + " |"
        for row in view.omissions
    ]
    return [header, rule, *body]
