"""The corpus: what is stored and when, add files or URLs (with metadata), delete a source or a document."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from compare.ingest.readers import SIDECAR_SUFFIXES, ReadOptions
from compare.render import escape_markdown
from compare.types import SourceSummary
from compare.ui_charts import coverage_chart, coverage_rows
from compare.view import source_colours
from pages import common

#: Article formats, plus YAML/JSON sidecars (`<stem>.meta.yaml`) that carry a file's metadata.
UPLOAD_TYPES = ["txt", "md", "markdown", "html", "htm", "pdf", "jsonl", "ndjson", "yaml", "yml", "json"]


def overview(summaries: list[SourceSummary], rows: list[dict[str, Any]]) -> None:
    st.header("What is stored", divider="gray")
    if not summaries:
        st.info("The store is empty: add files or URLs below, or load the demo corpus.")
        if common.DEMO_CORPUS.exists() and st.button("Load the demo corpus", key="corpus_demo"):
            _ingest([str(common.DEMO_CORPUS)], ReadOptions(settings=common.settings().ingest))
        return
    cols = st.columns(4)
    cols[0].metric("Documents", sum(s.documents for s in summaries))
    cols[1].metric("Sources", len(summaries))
    cols[2].metric("Duplicates", sum(s.duplicates for s in summaries))
    cols[3].metric("Undated", sum(s.undated for s in summaries))
    st.dataframe([s.model_dump() for s in summaries], hide_index=True, width="stretch")
    coverage = coverage_rows(rows)
    if coverage:
        st.subheader("Coverage over time", anchor=False)
        colours = source_colours([s.source for s in summaries])
        st.altair_chart(coverage_chart(coverage, colours), width="stretch")


def _metadata_fields(prefix: str, *, with_url: bool = False) -> ReadOptions:
    """The metadata form; empty fields are left to the files themselves (sidecars, page metadata)."""
    left, right = st.columns(2)
    source = left.text_input("Source", key=f"{prefix}_source", placeholder="e.g. nyt (short key)")
    outlet = right.text_input("Outlet", key=f"{prefix}_outlet", placeholder="e.g. The New York Times")
    title = left.text_input("Title", key=f"{prefix}_title", help="For a single document.")
    day = right.date_input("Date", value=None, key=f"{prefix}_date", min_value=dt.date(1900, 1, 1))
    url = st.text_input("Original URL", key=f"{prefix}_url") if with_url else ""
    return ReadOptions(
        source=source.strip() or None,
        outlet=outlet.strip() or None,
        title=title.strip() or None,
        date=day.isoformat() if isinstance(day, dt.date) else None,
        url=url.strip() or None,
        settings=common.settings().ingest,
    )


def add_files() -> None:
    max_mb = int(common.settings().ingest.max_file_mb)
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            "Files: txt, md, html, pdf, jsonl (and `<name>.meta.yaml` sidecars with their metadata)",
            type=UPLOAD_TYPES, accept_multiple_files=True, key="upload_files", max_upload_size=max_mb,
        )  # fmt: skip
        options = _metadata_fields("up", with_url=True)
        submitted = st.form_submit_button("Add files", type="primary", icon=":material/upload_file:")
    if not submitted:
        return
    if not files:
        st.warning("Choose one or more files first.")
        return
    with tempfile.TemporaryDirectory(prefix="ncompare-upload-") as folder:
        inputs, names = _save_uploads(files, Path(folder))
        if not inputs:
            st.warning("Only metadata sidecars were uploaded: add the article files they describe.")
            return
        _ingest(inputs, options, names)


def _save_uploads(files: Sequence[Any], folder: Path) -> tuple[list[str], dict[str, str]]:
    """Write uploads under their own names (sidecars beside their files); return inputs and display names."""
    inputs: list[str] = []
    names: dict[str, str] = {}
    for upload in files:
        name = Path(upload.name).name.lstrip(".") or "upload"
        path = folder / name
        path.write_bytes(upload.getvalue())
        if not name.lower().endswith(SIDECAR_SUFFIXES):
            inputs.append(str(path))
            names[str(path)] = name
    return inputs, names


def add_urls() -> None:
    with st.form("urls", clear_on_submit=False):
        text = st.text_area(
            "Web pages, one URL per line", key="urls_text", placeholder="https://example.org/story"
        )
        options = _metadata_fields("url")
        allow_private = st.checkbox(
            "Allow private and loopback addresses", key="urls_private",
            help="Off by default, so a pasted link cannot reach services inside your network.",
        )  # fmt: skip
        submitted = st.form_submit_button("Fetch and add", type="primary", icon=":material/link:")
    if not submitted:
        return
    urls = [line.strip() for line in text.splitlines() if line.strip()]
    if not urls:
        st.warning("Paste at least one URL.")
        return
    if allow_private:
        options.settings = options.settings.model_copy(update={"allow_private": True})
    _ingest(urls, options)


def _ingest(inputs: list[str], options: ReadOptions, names: dict[str, str] | None = None) -> None:
    """Ingest, then rerun so the overview shows the new counts; the per-item result is shown after it."""
    report = common.ingest_with_progress(inputs, options, names)
    if report is not None:
        st.session_state["ingest_result"] = (report, names or {})
        st.rerun()


def last_ingest() -> None:
    if result := st.session_state.get("ingest_result"):
        report, names = result
        st.subheader("Last ingest", anchor=False)
        common.show_ingest_report(report, names)


def delete_section(summaries: list[SourceSummary], rows: list[dict[str, Any]]) -> None:
    st.header("Delete", divider="gray")
    if not summaries:
        st.caption("Nothing stored.")
        return
    left, right = st.columns(2)
    with left:
        source = st.selectbox("Source", [s.source for s in summaries], key="del_source")
        sure = st.checkbox("Yes, delete every document of this source", key="del_source_sure")
        if st.button("Delete source", disabled=not sure, key="del_source_go", icon=":material/delete:"):
            _delete(lambda: common.services().store.delete_source(str(source)))
    with right:
        docs = sorted((r for r in rows if r.get("source") == source), key=lambda r: str(r.get("date") or ""))
        labels = {str(r["id"]): f"{r.get('date') or 'undated'} · {r.get('title') or r['id']}" for r in docs}
        doc_id = st.selectbox("Document", list(labels), format_func=lambda i: labels.get(i, i), key="del_doc")
        if st.button("Delete document", disabled=doc_id is None, key="del_doc_go", icon=":material/delete:"):
            _delete(lambda: common.services().store.delete_documents([str(doc_id)]))


def _delete(action: Callable[[], int]) -> None:
    with common.guarded():
        deleted = action()
        common.bump_corpus()
        st.session_state["deleted_message"] = f"Deleted {deleted} document(s)."
        st.rerun()


def main() -> None:
    st.title("Corpus", anchor=False)
    common.open_services()
    if message := st.session_state.pop("deleted_message", None):
        st.success(escape_markdown(message))
    summaries = common.current_summaries()
    rows = common.current_corpus_rows()
    overview(summaries, rows)
    st.header("Add articles", divider="gray")
    files_tab, urls_tab = st.tabs(["Upload files", "Paste URLs"])
    with files_tab:
        add_files()
    with urls_tab:
        add_urls()
    last_ingest()
    delete_section(summaries, rows)


main()
