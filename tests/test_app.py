"""The Streamlit app's flows with streamlit.testing.v1.AppTest (in process, no browser).

The demo corpus is ingested once per session by the CLI (a separate process, so the store files are complete
on disk) and copied into each test's own data dir, so tests can write history and delete freely.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from compare.history import History
from compare.ingest.readers import ReadOptions
from tests.conftest import FIXTURES, REPO
from tests.fakes import FakeOpenAIServer, Recorded, reply, requested_method, status

QUESTION = "How did the US position on Ukraine change?"
DEMO_SOURCES = ["department_of_defense", "politico-via-ua-press", "wapo-via-ua-press", "whitehouse"]
TIMEOUT = 90
SECRET = "sk-typed-SECRET-123"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the ingested demo corpus (made once per session, never written to by tests)."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    ncompare = Path(sys.executable).with_name("ncompare")
    subprocess.run([str(ncompare), "ingest", str(REPO / "examples" / "corpus"), "--data-dir", str(data_dir),
                    "--json"], check=True, capture_output=True, timeout=300)  # fmt: skip
    return data_dir


@pytest.fixture
def demo_dir(demo_store: Path, _isolated_data_dir: Path) -> Path:
    """This test's data dir (NCOMPARE_DATA_DIR), filled with a copy of the demo store."""
    shutil.copytree(demo_store, _isolated_data_dir)
    return _isolated_data_dir


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str = QUESTION) -> AppTest:
    at.text_input(key="question").set_value(question)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    return at


def html_bodies(at: AppTest) -> str:
    return "\n".join(element.proto.body for element in at.get("html"))


def texts(elements: Any) -> str:
    return "\n".join(str(element.value) for element in elements)


def test_ask_offline_shows_sources_side_by_side_and_saves_history(demo_dir: Path) -> None:
    at = ask(start())
    assert not at.error, texts(at.error)
    comparison = at.session_state["comparison"]
    assert [v.source for v in comparison.sources] == DEMO_SOURCES
    html = html_bodies(at)
    assert html.count('class="nc-source"') == len(DEMO_SOURCES)
    assert "✓ verified" in html and "<mark>" in html  # quotes expand to their highlighted paragraph
    headers = [h.value for h in at.header]
    assert headers[:2] == ["Sources side by side", "Change over time"] or headers[0] == "Answer"
    assert {"Sources side by side", "Change over time", "Agreements", "Differences", "Omissions"} <= set(
        headers
    )
    assert "Department of Defense" in html and "<h3>department_of_defense</h3>" not in html  # outlet names
    assert "Tone: " in html and "stance toward" not in html.lower()  # tone is labelled as tone
    assert len(at.get("vega_lite_chart")) == 1  # the timeline
    entries = History(demo_dir).entries()
    assert [e.question for e in entries] == [QUESTION] and at.session_state["history_id"] == entries[0].id


def test_a_claim_typed_in_the_app_is_measured_for_every_source(demo_dir: Path) -> None:
    claim = "The United States will send Patriot air defense systems to Ukraine"
    at = start()
    at.text_input(key="claim").set_value(claim)
    at = ask(at, "Will the US send Patriot systems?")
    assert not at.error, texts(at.error)
    comparison = at.session_state["comparison"]
    assert comparison.target == claim and comparison.target_is_proposition
    assert comparison.claims[0].is_target and {p.source for p in comparison.claims[0].positions} >= set(
        v.source for v in comparison.sources
    )
    assert all(v.position is not None for v in comparison.sources)


def test_filters_restrict_sources_and_are_recorded(demo_dir: Path) -> None:
    at = start()
    at.multiselect(key="f_sources").set_value(["whitehouse", "department_of_defense"]).run()
    at.selectbox(key="f_where_key").set_value("event_id").run()
    at.selectbox(key="f_where_value").set_value("us-gov-2022-10-10-missile-strikes").run()
    at.slider(key="f_k").set_value(4).run()
    ask(at)
    assert not at.error, texts(at.error)
    comparison = at.session_state["comparison"]
    assert sorted(v.source for v in comparison.sources) == ["department_of_defense", "whitehouse"]
    assert comparison.filters["where"] == {"event_id": "us-gov-2022-10-10-missile-strikes"}
    assert all(d.date and d.date.startswith("2022-10") for v in comparison.sources for d in v.documents)


def test_a_filter_that_excludes_every_source_says_so(demo_dir: Path) -> None:
    at = start()
    at.multiselect(key="f_sources").set_value(["politico-via-ua-press"]).run()  # its only article is undated
    at.toggle(key="f_use_dates").set_value(True).run()
    ask(at)
    assert "No stored document matches these filters" in texts(at.warning)
    assert "comparison" not in at.session_state
    at.toggle(key="f_use_dates").set_value(False).run()  # and the app keeps working
    ask(at)
    assert [v.source for v in at.session_state["comparison"].sources] == ["politico-via-ua-press"]


def test_empty_store_and_empty_question_are_explained() -> None:
    at = start()
    assert "The store is empty" in texts(at.info)
    assert any(b.label == "Load the demo corpus" for b in at.button)


def test_an_empty_question_asks_for_one(demo_dir: Path) -> None:
    at = ask(start(), "   ")
    assert "Type a question first" in texts(at.warning)


def test_openai_without_a_key_is_a_clear_message(demo_dir: Path) -> None:
    at = start()
    at.radio(key="b_kind").set_value("OpenAI").run()
    ask(at)
    assert "needs an API key" in texts(at.error) and "OPENAI_API_KEY" in texts(at.error)
    assert "comparison" not in at.session_state


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _use_compatible(at: AppTest, base_url: str, key: str = SECRET) -> AppTest:
    at.radio(key="b_kind").set_value("OpenAI-compatible").run()
    at.text_input(key="b_model").set_value("fake-model").run()
    at.text_input(key="b_url").set_value(base_url).run()
    at.text_input(key="b_key").set_value(key).run()
    return at


def _all_text(at: AppTest) -> str:
    parts = [html_bodies(at)] + [texts(getattr(at, kind)) for kind in ("error", "warning", "info", "caption")]
    return "\n".join([*parts, texts(at.markdown)])


def test_unreachable_base_url_is_a_clear_message_and_the_key_stays_secret(demo_dir: Path) -> None:
    at = _use_compatible(start(), f"http://127.0.0.1:{_closed_port()}/v1")
    ask(at)
    if "pending" in at.session_state:  # the estimate came first: go ahead
        at.button(key="confirm_run").click().run()
    assert at.error, "an unreachable server must be reported"
    assert SECRET not in _all_text(at)
    assert "OPENAI_API_KEY" not in os.environ  # the typed key was scoped to the call
    at.radio(key="b_kind").set_value("offline").run()  # the app keeps working
    ask(at)
    assert len(at.session_state["comparison"].sources) == len(DEMO_SOURCES)


def test_a_bad_base_url_is_refused_before_any_call(demo_dir: Path) -> None:
    at = _use_compatible(start(), "127.0.0.1:8080")
    ask(at)
    assert "must start with http" in texts(at.sidebar.warning)
    assert "Complete the backend settings" in texts(at.warning)


LLM_READY = importlib.util.find_spec("compare.analysis.llm") is not None
needs_llm = pytest.mark.skipif(
    not LLM_READY, reason="the LLM backend (compare/analysis/llm.py) is not in this tree"
)


@needs_llm
def test_openai_compatible_backend_estimate_then_run_on_a_loopback_server(services: Any) -> None:
    """The estimate comes first; on confirmation the call reaches the server with the typed key."""
    services.ingest([str(FIXTURES / "corpus" / "basil_triplet.jsonl")], ReadOptions())
    replies = json.loads((FIXTURES / "llm" / "sestak_replies.json").read_text(encoding="utf-8"))
    script = [reply(replies["single"])]  # three sources fit one call: no separate map and reduce
    with FakeOpenAIServer(script) as server:
        at = _use_compatible(start(), server.base_url)
        ask(at, "Did the White House act improperly in the Sestak job offer?")
        assert not server.requests, "nothing is sent before the user confirms the estimate"
        assert "Before running openai-compatible:fake-model@" in texts(at.info), texts(at.error)
        at.button(key="confirm_run").click().run()
        assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert len(server.requests) == 1
    assert {r.headers.get("authorization") for r in server.requests} == {f"Bearer {SECRET}"}
    comparison = at.session_state["comparison"]
    assert sorted(v.source for v in comparison.sources) == ["fox", "hpo", "nyt"]
    assert comparison.meta.backend == f"openai-compatible:fake-model@{server.base_url}"
    assert html_bodies(at).count('class="nc-source"') == 3
    assert SECRET not in _all_text(at) and "OPENAI_API_KEY" not in os.environ
    assert SECRET.encode() not in (services.settings.data_dir / "history.sqlite").read_bytes()


@needs_llm
def test_server_errors_are_clear_and_the_key_stays_secret(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCOMPARE_LLM__MAX_RETRIES", "0")
    with FakeOpenAIServer([status(500, f"scripted failure for {SECRET}")] * 4) as server:
        at = _use_compatible(start(), server.base_url)
        ask(at)
        at.button(key="confirm_run").click().run()
    assert not at.exception, at.exception
    assert "HTTP 500" in texts(at.error) and "comparison" not in at.session_state
    assert SECRET not in _all_text(at) and "redacted" in texts(at.error)  # even when the server echoes it


@needs_llm
def test_the_structured_output_method_is_chosen_in_the_app(services: Any) -> None:
    """A server that refuses json_schema (llama-cpp-python's 500 with a traceback): chosen explicitly, a short
    message without the traceback; on auto, the app finds json_object with the schema and answers."""
    services.ingest([str(FIXTURES / "corpus" / "basil_triplet.jsonl")], ReadOptions())
    replies = json.loads((FIXTURES / "llm" / "sestak_replies.json").read_text(encoding="utf-8"))
    crash = Recorded(500, 'Traceback (most recent call last):\n  File "/srv/llama_cpp/server/app.py", line 9\n'
                     "ValueError: response_format json_schema: Input should be 'text' or 'json_object'\n",
                     "text/plain")  # fmt: skip
    with FakeOpenAIServer([reply(replies["single"])], refusals={"json_schema": crash}) as server:
        at = _use_compatible(start(), server.base_url)
        at.selectbox(key="b_method").set_value("json_schema").run()
        ask(at, "Did the White House act improperly in the Sestak job offer?")
        at.button(key="confirm_run").click().run()
        shown = (texts(at.error) + texts(at.caption)).replace("\\", "")
        assert "does not accept the structured-output method 'json_schema'" in shown, shown
        assert "Traceback" not in shown and "/srv/" not in shown and "retry later" not in shown
        at.selectbox(key="b_method").set_value("auto").run()
        ask(at, "Did the White House act improperly in the Sestak job offer?")
        at.button(key="confirm_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert [requested_method(r.body) for r in server.requests] == [
        "json_schema",
        "json_schema",
        "json_object_schema",
    ]
    assert at.session_state["comparison"].meta.structured_output == "auto: json_object_schema"


def test_downloads_carry_the_current_comparison(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self: MemoryMediaFileStorage, path_or_data: Any, mimetype: str, kind: Any,
               filename: str | None = None) -> str:  # fmt: skip
        if filename:
            saved[filename] = bytes(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = ask(start())
    assert [b.label for b in at.download_button] == [
        f"Download {k}" for k in ("Markdown", "HTML", "JSON", "CSV")
    ]
    by_ext = {name.rsplit(".", 1)[1]: data.decode() for name, data in saved.items()}
    assert set(by_ext) == {"md", "html", "json", "csv"}
    assert all(name.startswith("ncompare-how-did-the-us-position-on-ukraine-change-") for name in saved)
    assert by_ext["html"].startswith("<!DOCTYPE html>") and by_ext["html"].count('class="nc-source"') == 4
    assert f'"question": "{QUESTION}"' in by_ext["json"]
    assert by_ext["csv"].count("\n") == 1 + len(DEMO_SOURCES) and by_ext["md"].startswith("# How did")
    at.download_button[0].click().run()  # downloading does not disturb the page
    assert not at.exception and "comparison" in at.session_state


def _show_judged() -> None:
    from pages.common import page_css
    from pages.results import show_comparison
    from tests.comparisons import judged_comparison

    page_css()
    show_comparison(judged_comparison())


def test_a_judged_comparison_shows_answer_positions_and_one_omission_model() -> None:
    from tests.comparisons import documents, judged_comparison

    comparison = judged_comparison()
    at = AppTest.from_function(_show_judged, default_timeout=TIMEOUT)
    key = ("documents", comparison.question, comparison.meta.created_at, comparison.meta.settings_hash)
    at.session_state["result_documents"] = (key, documents())  # the stored documents, without a store
    at.run()
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == [
        "Answer", "Sources side by side", "Positions on each claim", "Change over time", "Agreements",
        "Differences", "Omissions",
    ]  # fmt: skip
    html = html_bodies(at)
    assert html.count('class="nc-source"') == 3 and "<h3>U.S. Department of Defense</h3>" in html
    assert (
        "backs it · 0.86" in html and "not enough evidence (0.41)" in html and "Tone: positive 0.62" in html
    )
    assert "does not address it (checked 3 stored documents)" in html and "weaker contrast" in html
    assert (
        "backed “The US should send longer-range missiles to Ukraine” on 5 Jan 2024; disputed it on 5 Mar 2024"
        in html
    )
    assert html.index("reports a change") < html.index("backed “The US")  # ranked by confidence
    assert [m.value for m in at.metric] == ["3", "9", "3", "1"]
    assert len(at.get("vega_lite_chart")) == 1 and len(at.download_button) == 4


def _upload(at: AppTest, files: list[tuple[str, bytes, str]], **fields: str) -> AppTest:
    at.file_uploader(key="upload_files").set_value(files)
    for name, value in fields.items():
        at.text_input(key=f"up_{name}").set_value(value)
    at.button(key="FormSubmitter:upload-Add files").click().run()
    assert not at.exception, at.exception
    return at


def _ingest_rows(at: AppTest) -> list[dict[str, Any]]:
    frame = at.dataframe[-1].value
    return list(frame.to_dict("records"))


INJECTED = (
    "Ministers said on Tuesday that the <script>alert('x')</script> bridge talks would resume next week, "
    "and that <img src=x onerror=alert(1)> both sides had agreed to a neutral venue for the negotiations. "
    "Officials added that the talks on the bridge would cover tolls, maintenance and shared customs checks."
)


def test_upload_good_and_bad_files_then_ask_shows_markup_as_text(demo_dir: Path) -> None:
    at = start("pages/corpus.py")
    good = ("bridge.txt", INJECTED.encode(), "text/plain")
    binary = ("broken.txt", bytes(range(256)) * 8, "text/plain")
    bad_jsonl = ("lines.jsonl", b'{"text": "no source and too short"}\n{not json\n', "application/json")
    _upload(at, [good, binary, bad_jsonl], source="bridge-news", title="Bridge <b>talks</b>")
    rows = {row["item"]: row for row in _ingest_rows(at)}
    assert rows["bridge.txt"]["status"] == "added"
    assert rows["broken.txt"]["status"] == "failed" and rows["broken.txt"]["reason"]
    assert {rows[k]["status"] for k in rows if k.startswith("lines.jsonl")} == {"failed"}
    assert "failed" in texts(at.warning)
    at.switch_page("pages/ask.py").run()
    at.multiselect(key="f_sources").set_value(["bridge-news"]).run()
    ask(at, "What did ministers say about the bridge talks?")
    assert not at.error, texts(at.error)
    html = html_bodies(at)
    assert "&lt;script&gt;" in html and "<script>" not in html and "<img" not in html
    assert "Bridge &lt;b&gt;talks&lt;/b&gt;" in html  # the title, in the quote's document line


def test_upload_without_files_or_with_only_a_sidecar_is_explained(demo_dir: Path) -> None:
    at = start("pages/corpus.py")
    at.button(key="FormSubmitter:upload-Add files").click().run()
    assert "Choose one or more files first" in texts(at.warning)
    _upload(at, [("a.meta.yaml", b"source: x\n", "application/yaml")])
    assert "Only metadata sidecars" in texts(at.warning)


def test_corpus_overview_and_delete_a_document(demo_dir: Path) -> None:
    at = start("pages/corpus.py")
    assert [m.value for m in at.metric][:2] == ["33", "4"]
    assert len(at.get("vega_lite_chart")) == 1  # coverage over time
    at.selectbox(key="del_source").set_value("politico-via-ua-press").run()
    at.button(key="del_doc_go").click().run()
    assert "Deleted 1 document(s)." in texts(at.success)
    assert [m.value for m in at.metric][:2] == ["32", "3"]


def test_reopen_a_past_comparison_from_history(demo_dir: Path) -> None:
    at = ask(start())
    entry_id = at.session_state["history_id"]
    fresh = start("pages/history.py")  # a new session: only what is on disk
    assert QUESTION in texts(fresh.markdown)
    fresh.button(key=f"open_{entry_id}").click().run()
    assert not fresh.exception, fresh.exception
    assert "Reopened from history" in texts(fresh.caption)
    assert fresh.session_state["comparison"] == at.session_state["comparison"]
    assert html_bodies(fresh).count('class="nc-source"') == len(DEMO_SOURCES)
    history_page = start("pages/history.py")
    history_page.button(key=f"delete_{entry_id}").click().run()
    assert "No saved comparison yet" in texts(history_page.info)


def _page_with_errors() -> None:
    from compare.errors import StoreError
    from pages.common import guarded

    class InternalError(Exception):
        pass

    InternalError.__module__ = "chromadb.errors"
    with guarded():
        raise InternalError("Error executing plan: Internal error: Error finding id")
    with guarded():
        raise StoreError("the store is locked", hint="close the other program")
    with guarded(secret="sk-abc"):
        raise RuntimeError("boom with sk-abc inside")


def test_failures_become_messages_with_what_to_do() -> None:
    at = AppTest.from_function(_page_with_errors, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    errors, captions = texts(at.error), texts(at.caption)
    assert "changed outside this app" in errors and "restart the app" in captions
    assert "the store is locked" in errors and "What to do: close the other program" in captions
    assert "Unexpected error: RuntimeError: boom with \\*\\*\\* inside" in errors and "sk-abc" not in errors
