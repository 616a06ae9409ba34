"""A batch report's view -> report.md, report.html and comparisons.csv.

HTML comes from compare/templates/report.html (autoescaped, the comparison page's CSS and macros); Markdown
reuses the comparison Markdown body one heading level down; CSV reuses the comparison rows per question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from compare.render.html import render_template
from compare.render.markdown import autolink, body_md, escape_markdown, quote_md
from compare.render.table import csv_rows as comparison_rows
from compare.render.table import write_csv
from compare.report_view import ItemView, ReportView, build_report_view
from compare.view import build_view

if TYPE_CHECKING:
    from compare.reports import Report
    from compare.types import Document

md = escape_markdown

CSV_FIELDS = (
    "question_id",
    "kind",
    "group",
    "question",
    "status",
    "error",
    "source",
    "outlet",
    "position",
    "position_confidence",
    "position_target",
    "tone",
    "tone_confidence",
    "tone_low_confidence",
    "quotes_verified",
    "quotes_repaired",
    "shifts",
    "documents",
    "first_date",
    "last_date",
    "from_checkpoint",
    "backend",
    "settings_hash",
    "package_version",
    "created_at",
)


def render_html(report: Report, documents: Mapping[str, Document]) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external resource; all text escaped."""
    return render_template("report.html", report=build_report_view(report, documents))


# -- Markdown -------------------------------------------------------------------------------------------


def render_markdown(report: Report, documents: Mapping[str, Document]) -> str:
    """The report as Markdown; article and model text is escaped so nothing in it renders as markup."""
    view = build_report_view(report, documents)
    lines = [f"# {md(view.title)}", ""]
    lines += [md(view.description), ""] if view.description else []
    lines += ["## How this report was made", ""]
    lines += [f"- **{label}**: {md(text)}" for label, text in view.facts]
    lines += ["", "| source | outlet | documents | first | last |", "|---|---|---|---|---|"]
    lines += [
        f"| {md(s.source)} | {md(s.outlet)} | {s.documents} | {s.first} | {s.last} |" for s in view.corpus
    ]
    lines += [""] + [f"Note: {md(note)}" for note in view.notes]
    lines += ["", *_overview_markdown(view)]
    for item in view.items:
        lines += ["", *_item_markdown(item)]
    return "\n".join(lines).rstrip() + "\n"


def _overview_markdown(view: ReportView) -> list[str]:
    lines = [
        "## Executive overview",
        "",
        "| # | question | position toward the question | tone (not a position) | shifts | opposed differences |",
        "|---|---|---|---|---|---|",
    ]
    for row in view.glance:
        if row.error:
            lines.append(f"| {row.number} | {md(row.heading)} | **failed**: {md(row.error)} | | | |")
            continue
        positions = "; ".join(md(p) for p in row.positions) or "— the question states no proposition"
        tones = "; ".join(md(t) for t in row.tones)
        lines.append(
            f"| {row.number} | {md(row.heading)} | {positions} | {tones} | {row.shifts} | {row.opposed} |"
        )
    lines += ["", "### Biggest shifts", ""]
    for ranked in view.shifts:
        shift = ranked.shift
        meta = ", ".join(x for x in (shift.kind_text, shift.confidence_text) if x)
        lines.append(f"- {md(ranked.item_id)} **{md(shift.name)}** {md(shift.sentence)} ({md(meta)})")
        lines += [
            f"  - {name}: {quote_md(end.quote)}"
            for name, end in (("before", shift.before), ("after", shift.after))
        ]
    lines += [] if view.shifts else ["No change of position found in any question."]
    lines += ["", "### Disagreements", ""]
    for found in view.disagreements:
        difference = found.difference
        sides = "; ".join(f"{side.name}: {side.words}" for side in difference.sides)
        meta = ", ".join(x for x in (difference.strength_text, difference.confidence_text) if x)
        lines.append(f"- {md(found.item_id)} ({md(meta)}) claim “{md(difference.claim)}”: {md(sides)}")
    lines += [] if view.disagreements else ["No source backs a claim that another disputes, in any question."]
    return lines


def _item_markdown(item: ItemView) -> list[str]:
    lines = [f"## {item.number}. {md(item.heading)}", ""]
    lines += [md(fact) + "  " for fact in item.facts]
    if item.view is None:
        lines += ["", f"**This question failed:** {md(item.error)}"]
        return lines + ([f"→ {md(item.hint)}"] if item.hint else [])
    lines += [
        md(item.view.target_line) + "  ",
        *(f"> Warning: {md(w)}" for w in item.view.footer.warnings),
        "",
    ]
    lines += body_md(item.view, 3, item.skip)
    if item.kind == "timeline":
        lines += ["### Document by document", ""]
        for row in item.chronology:
            doc = row.document
            lines.append(f"- {doc.date_text} — {md(doc.title)} ({md(doc.doc_id)})")
            lines += [f"  - {quote_md(q)}" for q in row.quotes]
        lines.append("")
    lines += ["### Documents quoted", ""]
    for doc in item.quoted:
        lines.append(
            f"- {doc.date_text} · {md(doc.source_name)} · {md(doc.title)} ({md(doc.doc_id)}){autolink(doc.url)}"
        )
    return lines


# -- CSV ---------------------------------------------------------------------------------------------------


def csv_rows(report: Report, documents: Mapping[str, Document] | None = None) -> list[dict[str, object]]:
    """One row per question x source; a failed question is one row with its error and no source."""
    rows: list[dict[str, object]] = []
    for res in report.items:
        common = {
            "question_id": res.item.id,
            "kind": res.item.kind,
            "group": res.item.group or "",
            "question": res.item.question,
            "status": res.status,
            "error": res.error or "",
            "from_checkpoint": res.from_checkpoint,
            "backend": report.run.backend,
            "settings_hash": report.run.settings_hash,
            "package_version": report.run.package_version,
        }
        if res.comparison is None:
            rows.append(common)
            continue
        view = build_view(res.comparison, documents)
        rows += [{**row, **common} for row in comparison_rows(res.comparison, view)]
    return rows


def render_csv(report: Report, documents: Mapping[str, Document] | None = None) -> str:
    return write_csv(CSV_FIELDS, csv_rows(report, documents))
