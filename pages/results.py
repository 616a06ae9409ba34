"""Shows one comparison: the answer, sources side by side, positions on each claim, change over time,
agreements, differences, omissions, downloads.

Layout only: the content, its order and its words come from the view model (`compare.view.build_view`), the
same one the Markdown, HTML, CSV, terminal and report outputs lay out. HTML fragments come from the
autoescaped templates (`compare.render.fragment`); text for Streamlit's Markdown goes through escape_markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import streamlit as st

from compare import render
from compare.render import escape_markdown
from compare.types import Comparison, Document
from compare.ui_charts import timeline_chart
from compare.view import ComparisonView, Section, build_view, quote_doc_ids
from pages.common import guarded, services

COLUMNS_PER_ROW = 4


def documents_for(comparison: Comparison) -> dict[str, Document]:
    """The stored documents the comparison quotes (for context and links), loaded once per comparison."""
    key = ("documents", comparison.question, comparison.meta.created_at, comparison.meta.settings_hash)
    cached = st.session_state.get("result_documents")
    if cached is not None and cached[0] == key:
        return dict(cached[1])
    documents: dict[str, Document] = {}
    with guarded():
        documents = services().store.get_documents(quote_doc_ids(comparison))
    st.session_state["result_documents"] = (key, documents)
    return documents


def show_comparison(comparison: Comparison) -> None:
    documents = documents_for(comparison)
    view = build_view(comparison, documents)
    _header(view)
    _downloads(comparison, documents)
    for section in view.sections:
        st.header(section.title, divider="gray", anchor=False)
        if section.note:
            st.caption(escape_markdown(section.note))
        _show_section(view, section)
    with st.expander("How this result was made"):
        st.json(comparison.meta.model_dump(mode="json"), expanded=False)


def _show_section(view: ComparisonView, section: Section) -> None:
    if section.key == "time":
        _timeline(view)
    if section.empty:
        st.info(escape_markdown(section.empty))
    elif section.key == "sources":
        _source_columns(view)
    elif section.key == "time":
        st.html(render.fragment("shifts", view))
    else:
        st.html(render.section_html(view, section.key))


def _header(view: ComparisonView) -> None:
    footer = view.footer
    st.subheader(escape_markdown(view.question), anchor=False)
    filters = f" · {escape_markdown(footer.filters_line)}" if footer.filters_line else ""
    st.caption(escape_markdown(view.target_line) + filters)
    for warning in footer.warnings:
        st.warning(escape_markdown(warning))
    if footer.missing_sources:
        st.info(f"No passage matched the question in: {escape_markdown(', '.join(footer.missing_sources))}")
    cols = st.columns(4)
    cols[0].metric("Sources", len(view.columns))
    cols[1].metric("Verified quotes", view.verified_quotes)
    cols[2].metric("Shifts", len(view.shifts))
    cols[3].metric("Opposed differences", sum(1 for d in view.differences if d.strong))
    labels = f" · {footer.labels_line}" if footer.labels_line else ""
    st.caption(escape_markdown(f"{footer.meta_line} · {footer.quotes_line}{labels}"))


def _downloads(comparison: Comparison, documents: Mapping[str, Document]) -> None:
    stem = _file_stem(comparison)
    cols = st.columns(4)
    files = (
        ("Markdown", render.to_markdown(comparison, documents), "md", "text/markdown"),
        ("HTML", render.to_html(comparison, documents), "html", "text/html"),
        ("JSON", render.to_json(comparison), "json", "application/json"),
        ("CSV", render.to_csv(comparison, documents), "csv", "text/csv"),
    )
    for col, (label, data, ext, mime) in zip(cols, files):
        col.download_button(
            f"Download {label}",
            data=data.encode("utf-8"),
            file_name=f"{stem}.{ext}",
            mime=mime,
            key=f"download_{ext}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )


def _file_stem(comparison: Comparison) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", comparison.question.lower()).strip("-")[:50] or "comparison"
    stamp = re.sub(r"[^0-9]", "", comparison.meta.created_at)[:12]
    return f"ncompare-{slug}-{stamp}" if stamp else f"ncompare-{slug}"


def columns_per_row(n_sources: int) -> int:
    """At most COLUMNS_PER_ROW, rows as even as possible: 5 sources -> 3 + 2, 6 -> 3 + 3, 7 -> 4 + 3."""
    rows = max(1, math.ceil(n_sources / COLUMNS_PER_ROW))
    return max(1, math.ceil(n_sources / rows))


def _source_columns(view: ComparisonView) -> None:
    st.caption("Click a quote to see it in its paragraph, with the document's title, date and link.")
    per_row = columns_per_row(len(view.columns))
    for start in range(0, len(view.columns), per_row):
        row = view.columns[start : start + per_row]
        for column, source in zip(st.columns(per_row), row):
            with column:
                st.html(render.source_card_html(source))


def _timeline(view: ComparisonView) -> None:
    if view.timeline.empty:
        st.info("Nothing dated to place on a timeline: the matching documents have no dates.")
        return
    st.altair_chart(timeline_chart(view.timeline), width="stretch")
    st.caption(escape_markdown(" ".join(view.timeline.notes)))
