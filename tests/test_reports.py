"""Batch reports: spec validation, a full offline report over real articles, escaping, resume after a kill,
the LLM path against the loopback fake server, and a dry run that sends nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from compare.cli_report import report
from compare.errors import ConfigError
from compare.ingest.readers import ReadOptions
from compare.report_spec import ReportSpec, load_group_info, load_spec
from compare.reports import (
    WORK_DIR,
    Report,
    ReportInterrupted,
    ReportRunner,
    group_fields,
    plan_report,
    report_documents,
    report_settings,
    write_report,
)
from compare.services import Services
from tests.conftest import FIXTURES, REPO
from tests.fakes import Behaviour, FakeOpenAIServer, RecordedRequest

REPORTS = FIXTURES / "reports"
SPEC = REPORTS / "spec.yaml"
PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
OUTPUTS = ("report.md", "report.html", "report.json", "comparisons.csv")
runner = CliRunner()


def cli_app() -> typer.Typer:
    """`report` registered the way compare/cli.py does it (`app.command()(report)`), beside another command."""
    app = typer.Typer()
    app.command()(report)
    app.command("noop")(lambda: None)
    return app


def with_embedder(settings: Any, embedder: Any) -> Services:
    built = Services(settings)
    built.__dict__["embedder"] = embedder  # the session's loaded model
    return built


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """tests/fixtures/reports/articles.jsonl ingested once for the module."""
    from compare.settings import Settings

    data_dir = tmp_path_factory.mktemp("report-store")
    services = with_embedder(Settings(data_dir=data_dir), embedder)
    result = services.ingest([str(REPORTS / "articles.jsonl")], ReadOptions())
    assert result.count("added") == 9, result
    return data_dir


@pytest.fixture(scope="module")
def offline_run(store_dir: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    """The fixture spec run once through the CLI, in-process; the tests below read its four files."""
    import compare.cli_report as module

    out = tmp_path_factory.mktemp("report-out")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out)
        patch.setattr(module, "Services", lambda settings: with_embedder(settings, embedder))
        result = runner.invoke(
            cli_app(), ["report", str(SPEC), "--out", str(out), "--data-dir", str(store_dir)]
        )
    return {"result": result, "out": out}


# -- the spec --------------------------------------------------------------------------------------------


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("titel: X\nquestions: [a]\n", ["line 1: titel: unknown key (allowed here: title,", "title: required"]),
        ("title: X\ncorpus:\n  wher: {a: 1}\nquestions: [a]\n", ["line 3: corpus.wher: unknown key", "where"]),
        ("title: X\ncorpus: {since: 2022-13-01}\nquestions: [a]\n", ["line 2: corpus.since:", "date"]),
        ("title: X\ncorpus: {since: 2023-01-01, until: 2022-01-01}\nquestions: [a]\n", ["corpus: since"]),
        (
            "title: X\nquestions: [a]\ngroup_by: event_id\nquestion_template: 'How did {label} go?'\n",
            ["either `questions` or `group_by`"],
        ),
        ("title: X\ngroup_by: event_id\n", ["`group_by` needs a `question_template`"]),
        ("title: X\nquestions:\n  - question: ok\n  - {target: t}\n", ["line 4: questions[1].question: required"]),
        ("title: X\ngroup_by: e\nquestion_template: 'How {label.__class__}'\n", ["question_template:", "plain"]),
        ("title: X\nquestions: [a]\nbackend: gpt4\n", ["line 3: backend: must be offline"]),
        ("title: X\nquestions: [a]\ntop_k: 0\n", ["top_k:", "greater than or equal to 1"]),
        ("title: X\n", ["nothing to ask"]),
        ("title: [unclosed\n", ["not valid YAML"]),
    ],
    ids=["unknown-key", "nested-unknown", "bad-date", "dates-reversed", "both-ways", "no-template",
         "missing-question", "template-attribute", "bad-backend", "bad-k", "nothing", "yaml"],
)  # fmt: skip
def test_spec_errors_name_the_file_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write_spec(tmp_path, text, "weekly.yaml")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert "weekly.yaml" in caught.value.message
    for fragment in expected:
        assert fragment in caught.value.message


def test_spec_shorthands_and_the_example_spec() -> None:
    spec = ReportSpec.model_validate(
        {"title": "t", "questions": ["How?", {"question": "Why?", "target": "x"}]}
    )
    assert [q.question for q in spec.questions or []] == ["How?", "Why?"]
    example = REPO / "examples" / "reports" / "us-ukraine-framing.yaml"
    loaded = load_spec(example)
    assert loaded.group_by == "event_id" and loaded.timeline[0].source == "whitehouse"
    info = load_group_info(example.parent / (loaded.group_info or ""), "event_id")
    assert len(info) == 8 and all(record.get("label") for record in info.values())


def test_group_fields() -> None:
    rows = [
        {"id": "b", "source": "nyt", "outlet": "The New York Times", "date": "2014-01-24", "title": "Later",
         "main_event": "Subpoenas", "event_id": "e1", "url": "u"},
        {"id": "a", "source": "fox", "outlet": "Fox News", "date": "2014-01-23", "title": "Earlier",
         "main_event": "Subpoenas issued", "event_id": "e1", "url": "v"},
        {"id": "c", "source": "hpo", "date": "2014-01-23", "title": "Also", "main_event": "Subpoenas issued",
         "event_id": "e1"},
    ]  # fmt: skip
    fields = group_fields("event_id", "e1", rows)
    assert fields["label"] == "Subpoenas issued"  # the most common main_event
    assert fields["title"] == "Also" and fields["event_id"] == fields["value"] == "e1"
    assert fields["source_list"] == "hpo, Fox News and The New York Times"
    assert fields["sources"] == "fox, hpo, nyt" and fields["documents"] == "3"
    assert fields["date_range"] == "2014-01-23 – 2014-01-24"
    assert "url" not in fields and "id" not in fields
    assert group_fields("event_id", "e1", rows, {"label": "Given"})["label"] == "Given"


# -- a full offline report --------------------------------------------------------------------------------


VOID = frozenset({"meta", "link", "br", "wbr", "img", "input", "hr", "col", "area", "base", "source"})


class Page(HTMLParser):
    """Tags, attributes and text of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in[-2:] == ["head", "title"]:
            self.title += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(attrs[k] in (a.get(k) or "") for k in attrs)]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_offline_report_writes_four_files(offline_run: dict[str, Any]) -> None:
    result, out = offline_run["result"], offline_run["out"]
    assert result.exit_code == 0, result.output
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 500, name
    data = Report.model_validate_json((out / "report.json").read_text(encoding="utf-8"))
    run = data.run
    assert [i.item.id for i in data.items] == ["q01", "q02", "q03", "t01"]
    assert run.ok == 4 and run.failed == 0 and run.computed == 4 and run.from_checkpoint == 0
    assert run.backend == "offline" and run.model and run.settings_hash and run.package_version
    assert run.k_per_source == 4 and run.corpus.documents == 9 and len(run.corpus.sources) == 6
    assert (run.corpus.first_date, run.corpus.last_date) == ("2014-01-23", "2021-09-21")
    groups = [i for i in data.items if i.item.kind == "group"]
    assert {i.item.group for i in groups} == {
        "basil-d1344998-0e7c-409e-aaad-df5be687fc94",
        "basil-ad409798-ee94-4436-92c5-92669193be14",
        "allsides-5683",
    }
    christie = groups[0]  # groups are in date order: 2014 first
    assert christie.item.question == (
        "How did Fox News, HuffPost and The New York Times describe Christ Christie campaign "
        "documents subpoenaed?"
    )
    assert christie.comparison and christie.comparison.filters["where"] == {"event_id": christie.item.group}
    timeline = data.items[-1]
    assert timeline.item.kind == "timeline" and timeline.comparison is not None
    assert [v.source for v in timeline.comparison.sources] == ["nyt"]
    assert {ref.date for ref in timeline.comparison.sources[0].documents} == {"2014-01-23", "2018-08-18"}

    rows = list(csv.DictReader(io.StringIO((out / "comparisons.csv").read_text(encoding="utf-8"))))
    assert len(rows) == sum(len(i.comparison.sources) for i in data.items if i.comparison) == 10
    assert {
        "question_id",
        "source",
        "position",
        "tone",
        "tone_confidence",
        "quotes_verified",
        "shifts",
    } <= set(rows[0])
    assert all(row["status"] == "ok" and row["tone"] and int(row["quotes_verified"]) >= 0 for row in rows)
    nyt_timeline = next(row for row in rows if row["question_id"] == "t01")
    assert int(nyt_timeline["shifts"]) == len(timeline.comparison.shifts)


def test_report_html_structure_and_escaping(offline_run: dict[str, Any]) -> None:
    html = (offline_run["out"] / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    text = "".join(page.text)
    assert page.title == "Three events, three outlets each — narrative-compare report"
    sections = page.find("section", **{"class": "nc-question"})
    assert [s["id"] for s in sections] == ["q01", "q02", "q03", "t01"]
    assert all(s["data-status"] == "ok" for s in sections)
    assert len(page.find("svg")) >= 4  # one timeline per question (+ the overview chart)
    assert page.find("section", id="overview") and page.find("section", id="run")
    assert {a["href"] for a in page.find("a", href="#")} >= {"#q01", "#q02", "#q03", "#t01"}
    assert "Executive overview" in text and "Biggest shifts" in text and "Corpus snapshot" in text
    # the overview tells a position toward the question from tone, and never calls tone a stance
    assert (
        "position toward the question" in text and "tone (not a position)" in text and "Disagreements" in text
    )
    assert (
        "Tone: " in text and "stance per source" not in text.lower() and "stance toward" not in text.lower()
    )
    assert "@media print" in html and "<link" not in html and "src=" not in html.replace("src=x", "")
    # the injected markup is text, never an element or an event handler
    assert not page.find("script") and not page.find("img")
    assert not any(key.startswith("on") for _, attrs in page.tags for key in attrs)
    for payload in PAYLOADS:
        assert payload in text  # shown as text: in the heading, the contents, the quoted documents
    heading = next(s for s in sections if s["id"] == "q03")
    assert heading is not None and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # every quote links its document
    assert page.find("a", href="https://nypost.com/") and "✓ verified" in text

    markdown = (offline_run["out"] / "report.md").read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<(script|img)", markdown) and r"\<script\>alert(1)\</script\>" in markdown
    assert markdown.count("\n## ") >= 2 + 4  # run, overview, four sections


def test_failed_question_is_listed_everywhere(store_dir: Path, tmp_path: Path, embedder: Any) -> None:
    import compare.cli_report as module

    spec = write_spec(
        tmp_path,
        "title: Partly failing\nquestions:\n  - How did the outlets describe the subpoenas?\n"
        "  - {question: 'How was the UN speech received?', where: {event_id: no-such-event}}\n",
    )
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "Services", lambda settings: with_embedder(settings, embedder))
        result = runner.invoke(
            cli_app(), ["report", str(spec), "--out", str(out), "--data-dir", str(store_dir), "--json"]
        )
    assert result.exit_code == 2, result.output  # partial
    summary = json.loads(result.stdout)
    assert summary["ok"] == 1 and summary["failed"] == 1 and summary["errors"][0]["id"] == "q02"
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    failed = data["items"][1]
    assert failed["status"] == "failed" and "no stored passage matches" in failed["error"]
    assert failed["comparison"] is None and failed["hint"]
    page = parse((out / "report.html").read_text(encoding="utf-8"))
    assert page.find("section", id="q02")[0]["data-status"] == "failed"
    assert "This question failed: no stored passage matches" in "".join(page.text)
    assert "**This question failed:** no stored passage matches" in (out / "report.md").read_text(
        encoding="utf-8"
    )
    rows = list(csv.DictReader((out / "comparisons.csv").open(encoding="utf-8")))
    assert [r["status"] for r in rows if r["question_id"] == "q02"] == ["failed"]
    assert len(list((out / WORK_DIR).glob("*.json"))) == 1  # only the answered question is checkpointed


@pytest.mark.parametrize(
    ("backend", "message"),
    [("openai:gpt-4o-mini", "OPENAI_API_KEY"), ("llama:7b", "unknown backend 'llama:7b'")],
)
def test_wrong_settings_stop_the_run(
    store_dir: Path, tmp_path: Path, embedder: Any, backend: str, message: str
) -> None:
    import compare.cli_report as module

    out = tmp_path / "out"
    args = ["report", str(SPEC), "--out", str(out), "--data-dir", str(store_dir), "--backend", backend]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "Services", lambda settings: with_embedder(settings, embedder))
        result = runner.invoke(cli_app(), args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and not (out / "report.html").exists()


def test_ctrl_c_keeps_finished_questions(store_dir: Path, tmp_path: Path, embedder: Any) -> None:
    from compare.settings import Settings

    spec = load_spec(SPEC)
    settings = report_settings(Settings(data_dir=store_dir), spec)
    services = with_embedder(settings, embedder)
    plan = plan_report(spec, SPEC, settings, services.store)
    seen: list[str] = []

    def stop_after_first(result: Any) -> None:
        seen.append(result.item.id)
        if len(seen) == 1:
            raise KeyboardInterrupt

    with pytest.raises(ReportInterrupted) as caught:
        ReportRunner(services.engine, tmp_path, on_result=stop_after_first).run(plan)
    assert (caught.value.saved, caught.value.total) == (1, 4)
    resumed = ReportRunner(services.engine, tmp_path, resume=True)
    again = resumed.run(plan)
    assert [i.from_checkpoint for i in again.items] == [True, False, False, False]
    assert len(resumed.computed_keys) == 3


# -- resume after a kill, in a real process ------------------------------------------------------------------


def _stable(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Comparisons without what differs between two runs of the same question (time, latency)."""
    stable = []
    for item in data["items"]:
        comparison = item["comparison"]
        comparison["meta"].pop("latency_s")
        comparison["meta"].pop("created_at")
        comparison["meta"]["retrieval"].pop("seconds", None)
        stable.append({"id": item["item"]["id"], "key": item["item"]["key"], "comparison": comparison})
    return stable


def _report_process(store_dir: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "compare.cli_report",
        str(SPEC),
        "--out",
        str(out),
        "--data-dir",
        str(store_dir),
    ]
    return subprocess.Popen(
        [*command, *extra],
        cwd=out.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_report(
    store_dir: Path, offline_run: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    work = out / WORK_DIR
    process = _report_process(store_dir, out)
    deadline = time.monotonic() + 60
    while not list(work.glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # between questions: no chance to clean up
    process.communicate(timeout=30)
    before = {path.name: path.stat().st_mtime_ns for path in work.glob("*.json")}
    assert 1 <= len(before) < 4, "the run must be killed between its first and last question"
    assert not (out / "report.json").exists()

    finished = _report_process(store_dir, out, "--resume", "--json")
    stdout, stderr = finished.communicate(timeout=120)
    assert finished.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert summary["from_checkpoint"] == len(before) and summary["computed"] == 4 - len(before)
    # the checkpoints written before the kill were read, not rewritten: no question computed twice
    assert {name: (work / name).stat().st_mtime_ns for name in before} == before
    assert len(list(work.glob("*.json"))) == 4
    resumed = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {i["item"]["key"] + ".json" for i in resumed["items"] if i["from_checkpoint"]} == set(before)
    uninterrupted = json.loads((offline_run["out"] / "report.json").read_text(encoding="utf-8"))
    assert _stable(resumed) == _stable(uninterrupted)


# -- the LLM path against the loopback server ----------------------------------------------------------------

REPLIES = json.loads((FIXTURES / "llm" / "sestak_replies.json").read_text(encoding="utf-8"))
SESTAK = [json.loads(line) for line in (FIXTURES / "corpus" / "basil_triplet.jsonl").open(encoding="utf-8")]
MODEL = "gpt-4o-mini"
LLM_SPEC = """\
title: The Sestak offer, asked two ways
corpus: {where: {event_id: basil-38f7cbb7-5d6a-4c89-bcbd-8e164144172a}}
questions:
  - How did the sources describe the White House offer to Joe Sestak?
  - question: What role did Bill Clinton play in the Sestak affair?
    target: the White House offer to Joe Sestak
top_k: 4
"""


class RoutingServer(FakeOpenAIServer):
    """The fake server, answering by what is asked: a source's map call gets that source's canned analysis,
    a reduce call the canned reduce answer. Concurrent questions can then arrive in any order."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self._current = threading.local()
        current = self._current

        class Tagging(list[RecordedRequest]):
            def append(self, request: RecordedRequest) -> None:  # called in the handler thread, then _next
                current.request = request
                super().append(request)

        self.requests = Tagging()

    def _next(self) -> Behaviour | None:
        request: RecordedRequest = self._current.request
        return Behaviour(reply=canned_answer(request), delay_s=self.delay_s)


def canned_answer(request: RecordedRequest) -> Any:
    """The fixture answer for the schema asked (one call for all sources, map per source, or reduce)."""
    body = request.body
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("name")
    schema = schema or (body.get("tools") or [{}])[0].get("function", {}).get("name", "")
    if schema == "SingleAnswer":
        return REPLIES["single"]
    if schema == "CrossSourceAnalysis":
        return REPLIES["reduce"]
    shown = [a["source"] for a in SESTAK if a["id"] in request.text()]
    return {"sources": [s for source in shown for s in REPLIES["map"][source]["sources"]]}


@pytest.fixture
def sestak_services(services: Services) -> Services:
    result = services.ingest([str(FIXTURES / "corpus" / "basil_triplet.jsonl")], ReadOptions())
    assert result.count("added") == 3
    return services


def run_spec(services: Services, spec_path: Path, out: Path, backend: str, **options: Any) -> Report:
    spec = load_spec(spec_path)
    settings = report_settings(services.settings, spec, backend)
    warm = with_embedder(settings, services.embedder)
    plan = plan_report(spec, spec_path, settings, warm.store)
    result = ReportRunner(warm.engine, out, **options).run(plan)
    write_report(result, report_documents(warm.store, result), out)
    return result


@pytest.mark.slow
def test_llm_report_in_parallel_shows_tokens_and_cost(sestak_services: Services, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, LLM_SPEC)
    out = tmp_path / "out"
    with RoutingServer(delay_s=0.2) as server:
        backend = f"openai-compatible:{MODEL}@{server.base_url}"
        first = run_spec(sestak_services, spec, out, backend, concurrency=2)
        sent = len(server.requests)
        # both questions were in flight at once: the first two requests belong to different questions
        opening = {("What role did Bill Clinton play" in r.text()) for r in server.requests[:2]}
        resumed = run_spec(sestak_services, spec, out, backend, resume=True, concurrency=2)
        after_resume = len(server.requests)
        cached = run_spec(sestak_services, spec, tmp_path / "again", backend, concurrency=2)
    assert first.run.failed == 0, [i.error for i in first.items]
    assert sent >= 2 and opening == {True, False}  # one call per question or more, depending on the backend
    assert first.run.ok == 2 and first.run.concurrency == 2
    assert first.run.tokens_in == sent * 120 and first.run.tokens_out == sent * 30
    assert first.run.cost_usd > 0 and first.run.cost_usd_this_run == first.run.cost_usd
    assert first.run.model == MODEL and first.run.prompt == "compare@1"
    for item in first.items:
        assert item.comparison is not None and item.comparison.meta.backend == backend
        assert {v.source for v in item.comparison.sources} == {"nyt", "fox", "hpo"}
        assert item.comparison.meta.quotes["presented_verified"] > 0
    # a re-run costs nothing: from checkpoints with --resume, from the response cache without
    assert after_resume == sent and resumed.run.from_checkpoint == 2 and resumed.run.cost_usd_this_run == 0
    assert len(server.requests) == sent and cached.run.computed == 2 and cached.run.cost_usd_this_run == 0
    assert cached.run.cost_usd == 0 and cached.run.tokens_in == first.run.tokens_in
    assert all(
        any(w.startswith("cached:") for w in i.comparison.meta.warnings) for i in cached.items if i.comparison
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    cost = f"${first.run.cost_usd:.4f}"
    assert f"{sent * 120} in + {sent * 30} out" in html and cost in html
    assert cost.replace("$", r"\$") in markdown and MODEL in markdown and "compare@1" in html


def test_dry_run_sends_nothing(
    sestak_services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compare.cli_report as module

    spec = write_spec(tmp_path, LLM_SPEC)
    monkeypatch.setattr(
        module, "Services", lambda settings: with_embedder(settings, sestak_services.embedder)
    )
    with RoutingServer() as server:
        backend = f"openai-compatible:{MODEL}@{server.base_url}"
        args = ["report", str(spec), "--out", str(tmp_path / "out"), "--backend", backend, "--dry-run"]
        result = runner.invoke(
            cli_app(), [*args, "--data-dir", str(sestak_services.settings.data_dir), "--json"]
        )
        table = runner.invoke(cli_app(), [*args, "--data-dir", str(sestak_services.settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert server.requests == []
    estimate = json.loads(result.stdout)
    assert [q["calls"] >= 1 for q in estimate["questions"]] == [True, True]
    assert all(q["prompt_tokens"] > 0 and q["cost_usd"] > 0 for q in estimate["questions"])
    assert estimate["total"]["prompt_tokens"] == sum(q["prompt_tokens"] for q in estimate["questions"])
    assert "nothing was sent" in table.stdout and "q02" in table.stdout
    assert not (tmp_path / "out" / "report.html").exists()


def test_overview_ranks_changes_of_position_and_keeps_only_opposed_differences() -> None:
    from compare.report_view import biggest_shifts, disagreements, glance_row, item_view
    from compare.reports import ItemResult, ReportItem
    from tests.comparisons import documents, judged_comparison

    item = ReportItem(id="q01", kind="question", heading="Missiles", question="Should the US send missiles?")
    view = item_view(1, ItemResult(item=item, status="ok", comparison=judged_comparison()), documents(), {})
    assert [r.shift.kind for r in biggest_shifts([view])] == [
        "reported",
        "position",
    ]  # a tone change is not one
    assert [d.difference.strength_text for d in disagreements([view])] == ["opposed"]  # no weaker contrast
    glance = glance_row(view)
    assert glance.positions == [
        "U.S. Department of Defense: backs it · 0.86",
        "The Washington Post: disputes it · 0.74",
        "Blog X: not enough evidence (0.41)",
    ]
    assert glance.tones[0] == "U.S. Department of Defense: Tone: positive 0.62" and glance.opposed == 1
