"""Ask a question; see the sources side by side, their change over time, agreement, difference, omission."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import streamlit as st

from compare.ingest.readers import ReadOptions
from compare.redact import remember_secret
from compare.render import escape_markdown
from compare.settings import METHOD_LABELS
from compare.settings import STRUCTURED_METHODS as SETTING_VALUES
from compare.store import Filters
from compare.types import Comparison, SourceSummary
from pages import common
from pages.results import show_comparison

BACKENDS = ("offline", "OpenAI", "OpenAI-compatible")
BACKEND_CAPTIONS = ("local, no key, no cost", "OPENAI_API_KEY; paid", "Ollama, vLLM, llama.cpp server …")
KEY_VARIABLE = "OPENAI_API_KEY"
ANY = "(any)"


@dataclass
class Ask:
    """One question with everything needed to run it, except a typed key (read from the widget when used)."""

    question: str
    filters: Filters
    k: int
    backend: str
    target: str | None = None
    structured_method: str | None = None


def sidebar_filters(summaries: list[SourceSummary]) -> tuple[Filters, int]:
    st.sidebar.header("Filters")
    counts = {s.source: s.documents for s in summaries}
    sources = st.sidebar.multiselect(
        "Sources",
        options=list(counts),
        format_func=lambda s: f"{s} ({counts.get(s, 0)})",
        placeholder="all sources",
        key="f_sources",
    )
    since, until = _date_filter(summaries)
    where = _metadata_filter()
    k = st.sidebar.slider(
        "Passages per source (top-k)", 1, 30, common.settings().k_per_source, key="f_k",
        help="How many passages are retrieved for each source before comparing.",
    )  # fmt: skip
    return Filters(sources=sources, since=since, until=until, where=where), int(k)


def _date_filter(summaries: list[SourceSummary]) -> tuple[str | None, str | None]:
    dates = [d for s in summaries for d in (s.first_date, s.last_date) if d]
    if not dates or not st.sidebar.toggle("Only a date range", key="f_use_dates"):
        return None, None
    low, high = dt.date.fromisoformat(min(dates)), dt.date.fromisoformat(max(dates))
    picked = st.sidebar.date_input(
        "Dates", value=(low, high), min_value=low, max_value=high, key="f_dates",
        help="Undated documents are left out while a date range is on.",
    )  # fmt: skip
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0].isoformat(), picked[1].isoformat()
    return None, None  # a half-picked range filters nothing yet


def _metadata_filter() -> dict[str, str] | None:
    facets = common.metadata_facets(common.current_corpus_rows())
    if not facets:
        return None
    key = st.sidebar.selectbox("Metadata", [ANY, *facets], key="f_where_key", help="e.g. event_id")
    if key is None or key == ANY:
        return None
    value = st.sidebar.selectbox(f"{escape_markdown(key)} =", facets[key], key="f_where_value")
    return {key: value} if value is not None else None


def sidebar_backend() -> tuple[str | None, str | None]:
    """(backend spec or None if incomplete, typed key or None). The key stays in this widget only."""
    st.sidebar.header("Backend")
    kind = st.sidebar.radio("Backend", BACKENDS, captions=BACKEND_CAPTIONS, key="b_kind",
                            label_visibility="collapsed")  # fmt: skip
    if kind == "offline":
        return "offline", None
    model = st.sidebar.text_input("Model", value="gpt-4o-mini", key="b_model").strip()
    base_url = ""
    if kind == "OpenAI-compatible":
        base_url = st.sidebar.text_input("Base URL", value="http://127.0.0.1:11434/v1", key="b_url").strip()
    st.sidebar.selectbox(
        "Structured output", SETTING_VALUES, index=SETTING_VALUES.index(common.settings().llm.structured_method),
        key="b_method", format_func=lambda m: METHOD_LABELS.get(m, m),
        help="How the server is asked for JSON. Auto tries each way the server may accept and remembers what "
        "worked for this server and model; pick one only if you know what your server supports.",
    )  # fmt: skip
    typed = _key_field()
    if not model:
        st.sidebar.warning("Name the model, e.g. gpt-4o-mini.")
        return None, typed
    if kind == "OpenAI":
        return f"openai:{model}", typed
    if not base_url.lower().startswith(("http://", "https://")):
        st.sidebar.warning("The base URL must start with http:// or https://, e.g. http://127.0.0.1:11434/v1")
        return None, typed
    return f"openai-compatible:{model}@{base_url}", typed


def _key_field() -> str | None:
    if os.environ.get(KEY_VARIABLE):
        st.sidebar.caption(f"Using the key in `{KEY_VARIABLE}`.")
        return None
    typed = st.sidebar.text_input(
        "API key", type="password", key="b_key",
        help=f"Or set {KEY_VARIABLE} before starting the app. A typed key is used for this session's calls only: "
        "never saved to disk, history or logs.",
    )  # fmt: skip
    remember_secret(typed)  # redacted from every output of this process from now on (compare/redact.py)
    return typed.strip() or None


def empty_store() -> None:
    st.info("The store is empty. Load the bundled demo corpus, or add your own articles on the Corpus page.")
    if common.DEMO_CORPUS.exists() and st.button("Load the demo corpus", type="primary", key="load_demo"):
        report = common.ingest_with_progress(
            [str(common.DEMO_CORPUS)], ReadOptions(settings=common.settings().ingest)
        )
        if report is not None and not report.failed:
            st.rerun()
        if report is not None:
            common.show_ingest_report(report)
    st.page_link("pages/corpus.py", label="Add articles", icon=":material/upload_file:")


def question_form(backend: str | None, typed_key: str | None, filters: Filters, k: int) -> None:
    with st.form("ask", border=False):
        question = st.text_input(
            "Question", key="question", placeholder=common.DEMO_QUESTION,
            help="Ask about a story or a position; every source's passages are retrieved and compared.",
        )  # fmt: skip
        claim = st.text_input(
            "Claim to measure every source against (optional)", key="claim",
            placeholder="e.g. The US will send longer-range missiles to Ukraine",
            help="A statement: each source is shown as backing it, disputing it, reporting it without taking a "
            "side, or not addressing it — or 'not enough evidence' below the measured confidence.",
        )  # fmt: skip
        submitted = st.form_submit_button("Compare", type="primary", icon=":material/compare_arrows:")
    if not submitted:
        return
    st.session_state.pop("pending", None)
    if not question.strip():
        st.warning(f"Type a question first, e.g. “{common.DEMO_QUESTION}”")
        return
    if backend is None:
        st.warning("Complete the backend settings in the sidebar first.")
        return
    if backend.startswith("openai:") and not (typed_key or os.environ.get(KEY_VARIABLE)):
        st.error(f"The OpenAI backend needs an API key: set {KEY_VARIABLE} or type one in the sidebar.")
        return
    if not _filters_match(filters):
        return
    method = None if backend == "offline" else st.session_state.get("b_method")
    ask = Ask(question.strip(), filters, k, backend, claim.strip() or None, method)
    if backend == "offline":
        run(ask, typed_key)
    else:
        estimate(ask, typed_key)


def _filters_match(filters: Filters) -> bool:
    if filters.to_chroma() is None:
        return True
    with common.guarded():
        if common.services().store.sources(filters):
            return True
        st.warning(
            "No stored document matches these filters (sources, dates, metadata). "
            "Widen them in the sidebar: every source was excluded."
        )
    return False


def estimate(ask: Ask, typed_key: str | None) -> None:
    with st.spinner("Estimating tokens and cost …"), common.guarded(secret=typed_key):
        # A typed key goes to this one call's backend only: never the environment, a cache or history.
        result = common.services().engine.estimate(
            ask.question,
            backend=ask.backend,
            filters=ask.filters,
            k=ask.k,
            api_key=typed_key,
            target=ask.target,
            structured_method=ask.structured_method,
        )
        st.session_state["pending"] = (ask, result)


def pending_run(typed_key: str | None) -> None:
    """Before a paid run: the estimate, and a button to go ahead."""
    ask, result = st.session_state["pending"]
    notes = "; ".join(result.notes)
    st.info(
        f"**Before running {escape_markdown(ask.backend)}**: about {result.prompt_tokens:,} prompt tokens and "
        f"up to {result.completion_tokens_max:,} completion tokens in {result.calls} call(s), "
        f"estimated cost **${result.cost_usd:.4f}**." + (f" {escape_markdown(notes)}" if notes else ""),
        icon=":material/payments:",
    )
    go, cancel = st.columns([1, 4])
    if cancel.button("Cancel", key="cancel_run"):
        st.session_state.pop("pending", None)
        st.rerun()
    if go.button("Run it", type="primary", key="confirm_run"):
        st.session_state.pop("pending", None)
        run(ask, typed_key)


def run(ask: Ask, typed_key: str | None) -> None:
    with st.spinner("Comparing the sources …"), common.guarded(secret=typed_key):
        comparison = common.services().engine.compare(
            ask.question,
            backend=ask.backend,
            filters=ask.filters,
            k=ask.k,
            api_key=typed_key,
            target=ask.target,
            structured_method=ask.structured_method,
        )
        _keep(comparison)


def _keep(comparison: Comparison) -> None:
    st.session_state["comparison"] = comparison
    st.session_state.pop("reopened", None)
    with common.guarded():
        st.session_state["history_id"] = common.history().add(comparison).id


def main() -> None:
    common.page_css()
    st.title("Compare how sources tell a story", anchor=False)
    services = common.open_services()
    summaries = common.current_summaries()
    filters, k = sidebar_filters(summaries)
    backend, typed_key = sidebar_backend()
    if services.store.is_empty:
        empty_store()
        return
    question_form(backend, typed_key, filters, k)
    if "pending" in st.session_state:
        pending_run(typed_key)
    comparison = st.session_state.get("comparison")
    if comparison is None:
        st.caption(f"Try: “{common.DEMO_QUESTION}” on the demo corpus.")
        return
    if reopened := st.session_state.get("reopened"):
        st.caption(f"Reopened from history (asked {escape_markdown(reopened)}).")
    show_comparison(comparison)


main()
