"""One comparison -> Markdown, self-contained HTML, CSV and JSON, each laid out from one view model.

`compare.view.build_view` decides what is shown, in which order and in which words; this package only lays it
out: `markdown.py` (escaped Markdown), `html.py` (Jinja2 templates in compare/templates/, autoescaped, inline CSS
and SVG), `svg.py` (timeline geometry), `table.py` (CSV). JSON stays the Comparison itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from compare.render.html import css, fragment, section_html, source_card_html, to_html_view
from compare.render.markdown import comparison_markdown, escape_markdown
from compare.render.table import CSV_FIELDS, csv_rows, csv_safe, write_csv
from compare.types import Comparison, Document
from compare.view import build_view

__all__ = [
    "CSV_FIELDS",
    "css",
    "csv_rows",
    "csv_safe",
    "escape_markdown",
    "fragment",
    "section_html",
    "source_card_html",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
]


def to_html(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """A self-contained HTML page: inline CSS, inline SVG timeline, no script, no external resource."""
    return to_html_view(build_view(comparison, documents))


def to_markdown(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    return comparison_markdown(build_view(comparison, documents))


def to_csv(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> str:
    """One row per source; with the documents, outlet names come from them when the comparison has none."""
    return write_csv(CSV_FIELDS, csv_rows(comparison, build_view(comparison, documents)))


def to_json(comparison: Comparison) -> str:
    return comparison.model_dump_json(indent=2)
