"""Shows one Comparison: sources side by side, change over time, agreement/difference, omissions, downloads.

Every article or model string goes through `compare.render` (html.escape / escape_markdown) before it reaches
the page; st.html is used only with those escaped fragments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import streamlit as st

from compare import render
from compare.types import Comparison, Document
from compare.ui_charts import timeline_chart
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
        documents = services().store.get_documents(render.quote_doc_ids(comparison))
    st.session_state["result_documents"] = (key, documents)
    return documents


def show_comparison(comparison: Comparison) -> None:
    documents = documents_for(comparison)
    _header(comparison)
    _downloads(comparison, documents)
    st.header("Sources side by side", divider="gray")
    _source_columns(comparison, documents)
    st.header("Change over time", divider="gray")
    _timeline(comparison)
    st.html(render.shifts_html(comparison, documents))
    st.header("Agreement and difference", divider="gray")
    st.subheader("Agreements")
    st.html(render.agreements_html(comparison, documents))
    st.subheader("Differences")
    st.html(render.differences_html(comparison, documents))
    st.header("Omissions", divider="gray")
    st.caption("Claims some sources report and others leave out (within the retrieved passages).")
    st.html(render.omission_matrix_html(comparison))
    with st.expander("How this result was made"):
        st.json(comparison.meta.model_dump(mode="json"), expanded=False)


def _header(comparison: Comparison) -> None:
    st.subheader(render.escape_markdown(comparison.question), anchor=False)
    filters = render.filters_line(comparison)
    target = render.escape_markdown(comparison.target)
    st.caption(f"Stance toward: **{target}**" + (f" · {render.escape_markdown(filters)}" if filters else ""))
    for warning in comparison.meta.warnings:
        st.warning(render.escape_markdown(warning))
    retrieval = comparison.meta.retrieval
    missing = retrieval.get("sources_without_matches") if isinstance(retrieval, dict) else None
    if missing:
        names = ", ".join(map(str, missing))  # type: ignore[call-overload]
        st.info(f"No passage matched the question in: {render.escape_markdown(names)}")
    quotes = comparison.meta.quotes
    cols = st.columns(4)
    cols[0].metric("Sources", len(comparison.sources))
    cols[1].metric("Verified quotes", quotes.get("presented_verified", 0))
    cols[2].metric("Shifts", len(comparison.shifts))
    cols[3].metric("Seconds", f"{comparison.meta.latency_s:.2f}")
    st.caption(render.escape_markdown(render.meta_line(comparison)))


def _downloads(comparison: Comparison, documents: Mapping[str, Document]) -> None:
    stem = _file_stem(comparison)
    cols = st.columns(4)
    files = (
        ("Markdown", render.to_markdown(comparison, documents), "md", "text/markdown"),
        ("HTML", render.to_html(comparison, documents), "html", "text/html"),
        ("JSON", render.to_json(comparison), "json", "application/json"),
        ("CSV", render.to_csv(comparison), "csv", "text/csv"),
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


def _source_columns(comparison: Comparison, documents: Mapping[str, Document]) -> None:
    if not comparison.sources:
        st.info("No source had a passage matching the question.")
        return
    views = comparison.sources
    st.caption("Click a quote to see it in its paragraph, with the document's title, date and link.")
    per_row = columns_per_row(len(views))
    for start in range(0, len(views), per_row):
        row = views[start : start + per_row]
        for column, view in zip(st.columns(per_row), row):
            with column:
                st.html(render.source_card_html(view, documents))


def _timeline(comparison: Comparison) -> None:
    points, undated = render.timeline_points(comparison)
    spans = render.stance_spans(comparison)
    if not points and not spans:
        st.info("Nothing dated to place on a timeline: the matching documents have no dates.")
        return
    colours = render.source_colours(render.source_names(comparison))
    st.altair_chart(timeline_chart(points, spans, colours), width="stretch")
    notes = [
        "Bands: each source's overall stance over its documents' dates.",
        "Dots: the two ends of a shift.",
    ]
    if undated:
        notes.append(f"{undated} shift end(s) without a date are listed below but not drawn.")
    st.caption(" ".join(notes))
