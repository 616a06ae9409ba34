"""What every page shares: the cached services, the history, error display, corpus facets.

Not a page itself (app.py lists the pages). Layout helpers only; the work is done by the `compare` library.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import ValidationError

from compare.errors import CompareError
from compare.history import History
from compare.ingest.readers import EXTENSIONS, ReadOptions
from compare.render import css, escape_markdown
from compare.services import Services
from compare.settings import Settings, load_settings
from compare.store import user_metadata
from compare.types import IngestItemResult, IngestReport, SourceSummary

APP_DIR = Path(__file__).resolve().parent.parent
DEMO_CORPUS = APP_DIR / "examples" / "corpus"
DEMO_QUESTION = "How did the US position on Ukraine change?"
_MAX_FACET_VALUES = 300
log = logging.getLogger("narrative_compare.app")


def settings() -> Settings:
    """The effective settings (NCOMPARE_* variables, .env); a bad value stops the page with a message."""
    try:
        return load_settings()
    except (ValidationError, CompareError) as exc:
        st.error(f"The settings are invalid: {escape_markdown(exc)}")
        st.caption("Check the NCOMPARE_* environment variables and .env; `ncompare config` lists them.")
        st.stop()
        raise  # unreachable: st.stop() raises


@st.cache_resource(show_spinner="Loading the embedding model and opening the store …")
def _services(settings_json: str) -> Services:
    return Services(Settings.model_validate_json(settings_json))


def services() -> Services:
    """One Services (model, store, engine) per distinct settings, kept for the life of the server."""
    return _services(settings().model_dump_json())


def open_services() -> Services:
    """The services with the store open and the model loaded; on failure the page says why and stops."""
    built = services()
    try:
        built.store  # noqa: B018 - open now, so a failure is reported here and not halfway through a page
    except Exception as exc:
        show_error(exc)
        st.stop()
    return built


def history() -> History:
    return History(settings().data_dir)


def bump_corpus() -> None:
    """Call after the corpus changed: cached facets and overviews are recomputed."""
    st.session_state["corpus_generation"] = st.session_state.get("corpus_generation", 0) + 1
    corpus_rows.clear()
    source_summaries.clear()


@st.cache_data(ttl=60, show_spinner=False)
def corpus_rows(settings_json: str, generation: int) -> list[dict[str, Any]]:
    """Document metadata rows of the store (cached a minute, and until the app changes the corpus)."""
    return _services(settings_json).store.document_metadata()


def current_corpus_rows() -> list[dict[str, Any]]:
    return corpus_rows(settings().model_dump_json(), st.session_state.get("corpus_generation", 0))


@st.cache_data(ttl=60, show_spinner=False)
def source_summaries(settings_json: str, generation: int) -> list[SourceSummary]:
    return _services(settings_json).store.sources()


def current_summaries() -> list[SourceSummary]:
    return source_summaries(settings().model_dump_json(), st.session_state.get("corpus_generation", 0))


def metadata_facets(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """User metadata keys that group documents (not one value per document), with their values."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for key, value in user_metadata(row).items():
            if key != "id" and value not in (None, ""):
                values.setdefault(key, set()).add(str(value))
    return {
        key: sorted(found)
        for key, found in sorted(values.items())
        if len(found) <= _MAX_FACET_VALUES and (len(found) < len(rows) or len(rows) <= 1)
    }


def page_css() -> None:
    """The stylesheet of the HTML page and report (badges, quote cards, tables), once per page run."""
    st.html(f"<style>{css()}</style>")


def show_error(exc: BaseException, *, secret: str | None = None) -> None:
    """A CompareError as message + what to do; anything else as a short message, never a traceback."""
    if isinstance(exc, CompareError):
        st.error(_redact(exc.message, secret), icon=":material/error:")
        if exc.hint:
            st.caption("What to do: " + _redact(exc.hint, secret))
        return
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("compare."):
        st.error(f"This part of narrative-compare is not available in this version ({exc.name}).")
        st.caption("What to do: use the offline backend.")
        return
    if type(exc).__module__.startswith("chromadb"):
        st.error("The store was changed outside this app, or cannot be read: " + _redact(str(exc), secret))
        st.caption(
            "What to do: after `ncompare ingest` or `ncompare delete` in a terminal, restart the app (Ctrl-C, "
            "then `make app`); the Corpus page adds and deletes without a restart."
        )
        return
    log.warning("unexpected %s in the app", type(exc).__name__)
    st.error(f"Unexpected error: {type(exc).__name__}: {_redact(str(exc), secret)}", icon=":material/error:")
    st.caption("What to do: try again; if it persists, run the same step with `ncompare` to see details.")


def _redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return escape_markdown(text)


@contextmanager
def guarded(*, secret: str | None = None) -> Iterator[None]:
    """Errors inside become a message on the page; the rest of the page still renders."""
    try:
        yield
    except Exception as exc:  # the UI edge: every failure becomes a message, never a crash
        show_error(exc, secret=secret)


# -- ingest with progress ------------------------------------------------------------------------------------


def count_items(inputs: list[str]) -> int:
    """How many items an ingest will report (JSONL lines count one each), for the progress bar."""
    total = 0
    for item in inputs:
        path = Path(item)
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            if EXTENSIONS.get(file.suffix.lower()) == "jsonl":
                with file.open("rb") as handle:
                    total += sum(1 for line in handle if line.strip())
            elif file.suffix.lower() in EXTENSIONS and not file.name.lower().startswith("readme"):
                total += 1
    return max(total, 1)


def ingest_with_progress(
    inputs: list[str], options: ReadOptions, names: Mapping[str, str] | None = None
) -> IngestReport | None:
    """Ingest with a progress bar; None (and a message on the page) if the ingest could not run."""
    progress = st.progress(0.0, text="Loading the embedding model …")
    total = count_items(inputs)
    done = 0

    def on_item(item: IngestItemResult) -> None:
        nonlocal done
        done += 1
        name = display_name(item.origin, names)
        progress.progress(min(done / total, 1.0), text=f"{done} of ~{total}: {item.status} · {name}")

    report: IngestReport | None = None
    with guarded():
        built = services()
        report = built.ingest(inputs, options, on_item)
    progress.empty()
    bump_corpus()
    return report


def display_name(origin: str, names: Mapping[str, str] | None) -> str:
    """An item's origin with a temporary upload path replaced by the name the user uploaded."""
    for path, name in (names or {}).items():
        if origin.startswith(path):
            return name + origin[len(path) :]
    return origin


def show_ingest_report(report: IngestReport, names: Mapping[str, str] | None = None) -> None:
    counts = {s: report.count(s) for s in ("added", "unchanged", "replaced", "duplicate", "failed")}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing to ingest"
    chunks = sum(item.chunks for item in report.items)
    message = f"{summary} ({chunks} chunks in {report.seconds:.1f} s)"
    if report.failed:
        st.warning(message, icon=":material/warning:")
    else:
        st.success(message, icon=":material/check_circle:")
    rows = [
        {
            "item": display_name(item.origin, names),
            "status": item.status,
            "document": item.doc_id or "",
            "chunks": item.chunks,
            "reason": item.reason or (f"duplicate of {item.duplicate_of}" if item.duplicate_of else ""),
            "what to do": item.hint or "; ".join(item.warnings),
        }
        for item in report.items
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
