"""`ncompare eval`: dataset and suite validation, the prompt x backend matrix (offline and a loopback fake
OpenAI server, two prompt versions), recorded responses replayed, baseline comparison and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from compare.chunking import sentence_spans
from compare.errors import ConfigError
from compare.evaluation import EvalRequest, run_eval
from compare.evaluation.datasets import load_dataset, load_suite, load_target
from compare.evaluation.html_report import to_html
from compare.evaluation.replay import Cassette
from compare.evaluation.report import change, parse_fail_under
from compare.evaluation.synthetic import GENERATOR
from compare.settings import Settings
from tests.fakes import FakeOpenAIServer, reply

REPO = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "eval"
DATASET = FIXTURES / "dataset.yaml"


# -- validation --------------------------------------------------------------------------------------------


def test_dataset_loads_with_aliases_and_inline_documents() -> None:
    dataset = load_dataset(DATASET)
    assert [c.name for c in dataset.cases] == ["sestak", "wapo-inline"]
    assert dataset.cases[0].expected.stances == {"fox": "neutral", "hpo": "neutral", "nyt": "neutral"}
    assert dataset.corpus_path(dataset.cases[0]) == (FIXTURES / "sestak.jsonl").resolve()
    assert dataset.cases[1].inputs.documents and dataset.corpus_path(dataset.cases[1]) is None


def test_invalid_dataset_names_every_case_and_key() -> None:
    with pytest.raises(ConfigError) as raised:
        load_dataset(FIXTURES / "bad_dataset.yaml")
    message = raised.value.message
    assert "case 'typo-in-inputs': unknown key 'inputs.filter'" in message
    assert "case 'bad-stance': unknown key 'expected.colour'" in message
    assert "case 'bad-stance': expected.stances.nyt" in message
    assert "case 'no-corpus'" in message and "exactly one of `corpus`" in message
    assert "case 'missing-file': corpus 'nowhere.jsonl' not found" in message


def test_suite_validation(tmp_path: Path) -> None:
    suite = load_suite(FIXTURES / "suite.yaml")
    assert [c.name for c in suite.datasets[0].cases] == ["sestak"]
    assert suite.backends == ["offline"] and suite.thresholds == {"errors": 0}
    shutil.copy(FIXTURES / "dataset.yaml", tmp_path / "dataset.yaml")
    shutil.copy(FIXTURES / "sestak.jsonl", tmp_path / "sestak.jsonl")
    bad = {
        "unknown key 'backend'": "datasets: [dataset.yaml]\nbackend: [offline]\n",
        "unknown threshold metric 'quote_valdity'": "datasets: [dataset.yaml]\nthresholds: {quote_valdity: 1}\n",
        "no case(s) 'nope'": "datasets: [{path: dataset.yaml, cases: [nope]}]\n",
    }
    for expected, text in bad.items():
        (tmp_path / "suite.yaml").write_text(text)
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            load_suite(tmp_path / "suite.yaml")


def test_shipped_suites_datasets_and_cassettes_are_valid() -> None:
    for name in ("smoke", "full"):
        suite = load_suite(REPO / "eval" / "suites" / f"{name}.yaml")
        assert "offline" in suite.backends and suite.thresholds.get("errors") == 0
        cassette = next(b for b in suite.backends if b.startswith("replay:")).split(":", 1)[1]
        assert Cassette.load(REPO / "eval" / "suites" / cassette).generator == GENERATOR
    datasets = {p.stem: load_dataset(p) for p in (REPO / "eval" / "datasets").glob("*.yaml")}
    assert {"seeds", "basil", "allsides", "us_gov", "smoke", "fnc1_judgements"} <= set(datasets)
    assert sum(len(c.expected.stances) for c in datasets["basil"].cases) == 45
    assert all(c.expected.reference_summary for c in datasets["allsides"].cases)
    assert any(c.expected.shifts for c in datasets["us_gov"].cases)


def test_fail_under_parsing() -> None:
    assert parse_fail_under(["quote_validity=0.9", "errors@offline=0"]) == {
        "quote_validity": 0.9,
        "errors@offline": 0.0,
    }
    for bad in ("quote_validity", "nonsense=1", "quote_validity=high"):
        with pytest.raises(ConfigError):
            parse_fail_under([bad])


def test_change_direction_and_tolerance() -> None:
    assert change("quote_validity", 0.8, 0.9) == "worse"
    assert change("quote_validity", 0.9, 0.898) is None  # within 0.005: noise
    assert change("errors", 1, 0) == "worse"
    assert change("latency_p95_s", 1.1, 1.0) is None and change("latency_p95_s", 3.0, 1.0) == "worse"
    assert change("cost_usd", 0.0, 0.01) == "better"
    assert change("span_base_recall", 0.1, 0.9) is None  # informational


# -- the matrix ------------------------------------------------------------------------------------------


def first_sentences(path: Path) -> dict[str, tuple[str, str, str]]:
    """source -> (doc_id, first sentence, second sentence) of the fixture articles."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        spans = sentence_spans(doc["text"])
        found[doc["source"]] = (doc["id"], doc["text"][slice(*spans[0])], doc["text"][slice(*spans[1])])
    return found


def analysis(source: str, doc_id: str, real: str, fabricated: str | None = None) -> dict[str, Any]:
    quotes = [{"doc_id": doc_id, "text": real}] + (
        [{"doc_id": doc_id, "text": fabricated}] if fabricated else []
    )
    return {
        "source": source,
        "summary": f"{source} reports the offer <script>alert(1)</script>.",
        "stance": "neutral",
        "confidence": 0.7,
        "stance_quotes": [{"doc_id": doc_id, "text": real}],
        "claims": [{"id": f"{source}-1", "claim": real, "quotes": quotes}],
        "positions": [
            {"id": f"{source}-p1", "doc_id": doc_id, "stance": "neutral", "position": "x", "quote": real}
        ],
    }


def single_answer(analyses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sources": analyses, "agreements": [], "differences": [], "omissions": [], "shifts": []}


def scripted_replies() -> list[Any]:
    docs = first_sentences(FIXTURES / "sestak.jsonl")
    fabricated = "Sestak told reporters he had never heard from the White House about any job at all."
    sestak = single_answer(
        [analysis(s, d, first, fabricated if s == "nyt" else None) for s, (d, first, _) in docs.items()]
    )
    wapo = single_answer(
        [
            analysis(
                "wapo-via-ua-press",
                "inline-wapo",
                "His administration previously resisted supplying such weapons",
            )
        ]
    )
    # the order of calls: case by case, and within a case column by column (the offline column sends none)
    return [reply(sestak), reply(sestak), reply(wapo), reply(wapo)]


@pytest.fixture
def prompt_v2(tmp_path: Path) -> Path:
    """A test-only compare@2: compare@1 with another description (same parts and variables)."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    text = (REPO / "prompts" / "compare.v1.yaml").read_text(encoding="utf-8")
    (folder / "compare.v2.yaml").write_text(text.replace("version: 1", "version: 2", 1), encoding="utf-8")
    return folder


def test_matrix_two_prompts_two_backends(settings: Settings, embedder: Any, prompt_v2: Path) -> None:
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"prompts_dir": prompt_v2})})
    with FakeOpenAIServer(scripted_replies()) as server:
        fake = f"openai-compatible:fake-model@{server.base_url}"
        request = EvalRequest(str(DATASET), backends=["offline", fake], prompts=["compare@1", "compare@2"])
        report = run_eval(request, settings, embedder)
        assert len(server.requests) == 4
    labels = [c["label"] for c in report["columns"]]
    assert labels == [
        "offline",
        "openai-compatible:fake-model compare@1",
        "openai-compatible:fake-model compare@2",
    ]
    v1, v2 = report["columns"][1], report["columns"][2]
    assert (v1["prompts"], v2["prompts"]) == (["compare@1"], ["compare@2"])
    assert v1["settings_hashes"] != v2["settings_hashes"] and v1["models"] == ["fake-model"]
    assert report["package_version"] and report["settings_hash"]
    sestak = report["cases"][0]["results"]
    assert all(r["error"] is None for r in sestak.values())
    assert sestak["offline"]["metrics"]["quote_validity"] == 1.0
    fake_metrics = sestak[labels[1]]["metrics"]
    assert fake_metrics["quotes_dropped"] == 1  # the fabricated quote: never shown, counted against validity
    assert fake_metrics["quote_validity"] < 1.0
    assert fake_metrics["quote_slice_mismatches"] == 0
    assert fake_metrics["stance_accuracy"] == 1.0 and fake_metrics["source_coverage"] == 1.0
    assert fake_metrics["span_base_recall"] is not None
    assert fake_metrics["tokens_in"] > 0
    wapo = report["cases"][1]["results"]
    assert wapo["offline"]["metrics"]["rouge_l"] is not None
    everything = report["aggregates"]["offline"]["ALL"]
    assert everything["cases"] == 2 and everything["errors"] == 0
    assert everything["stance_majority_accuracy"] == 1.0  # every expected stance is neutral
    html = to_html(report)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    json.dumps(report)


def test_replay_records_then_replays_without_a_generator(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassette.jsonl"
    header = {"cassette": 1, "model": "synthetic-extractive-1", "generator": GENERATOR, "note": "test"}
    cassette.write_text(json.dumps(header) + "\n")
    request = EvalRequest(str(DATASET), backends=[f"replay:{cassette}"], prompts=["compare@1"], record=True)
    first = run_eval(request, settings, embedder)
    recorded = first["columns"][0]["replay"]
    assert recorded["generated"] >= 2 and recorded["misses"] == 0
    lines = cassette.read_text().splitlines()
    assert len(lines) == 1 + recorded["recorded"]
    # the same cassette as a real recording: no generator, every call must be found
    cassette.write_text("\n".join([json.dumps({**header, "generator": None}), *lines[1:]]) + "\n")
    again = run_eval(
        EvalRequest(str(DATASET), backends=[f"replay:{cassette}"], prompts=["compare@1"]), settings, embedder
    )
    assert again["columns"][0]["replay"]["misses"] == 0 and again["columns"][0]["replay"]["generated"] == 0
    label = first["columns"][0]["label"]
    for before, after in zip(first["cases"], again["cases"], strict=True):
        assert (
            before["results"][label]["metrics"]["quote_validity"]
            == after["results"][label]["metrics"]["quote_validity"]
        )


def test_replay_miss_without_generator_is_a_case_error(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    cassette = tmp_path / "empty.jsonl"
    cassette.write_text(json.dumps({"cassette": 1, "model": "m", "generator": None}) + "\n")
    report = run_eval(
        EvalRequest(str(FIXTURES / "suite.yaml"), backends=[f"replay:{cassette}"]), settings, embedder
    )
    result = report["cases"][0]["results"]["replay:empty compare@1"]
    assert "no recorded response" in result["error"] or "404" in result["error"]
    assert report["thresholds"][0]["passed"] is False  # the suite's errors: 0


# -- the command -------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, embedder: Any) -> typer.Typer:
    from compare.cli import app
    from compare.cli_eval import eval_command

    monkeypatch.setattr("compare.services.get_embedder", lambda settings: embedder)
    if not any(command.name == "eval" for command in app.registered_commands):
        app.command("eval")(eval_command)
    return app


def test_cli_fail_under_and_baseline(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run.json"
    base = ["eval", str(FIXTURES / "suite.yaml"), "--data-dir", str(tmp_path / "data")]
    ok = runner.invoke(cli, [*base, "--json", str(out), "--html", str(tmp_path / "run.html")])
    assert ok.exit_code == 0, ok.output
    assert "sestak" in ok.output and (tmp_path / "run.html").read_text().startswith("<!doctype html>")
    report = json.loads(out.read_text())
    assert report["thresholds"] == [
        {"metric": "errors", "column": "offline", "limit": 0.0, "actual": 0, "passed": True,
         "verdict": "0 <= ceiling 0"}
    ]  # fmt: skip
    failed = runner.invoke(cli, [*base, "--fail-under", "quote_validity=1.01", "--fail-under", "errors=0"])
    assert failed.exit_code == 1
    assert "FAILED quote_validity" in failed.output
    bad = runner.invoke(cli, [*base, "--fail-under", "quote_validity"])
    assert bad.exit_code == 1 and "metric=value" in bad.output

    # a baseline that was better everywhere: this run is marked as a regression
    better = json.loads(out.read_text())
    case = better["cases"][0]["results"]["offline"]["metrics"]
    case["citation_support"] = 1.0 if (case["citation_support"] or 0) < 0.99 else 2.0
    better["aggregates"]["offline"]["ALL"]["source_coverage"] = 2.0
    (tmp_path / "better.json").write_text(json.dumps(better))
    compared = runner.invoke(cli, [*base, "--baseline", str(tmp_path / "better.json"), "--json", str(out)])
    assert compared.exit_code == 0
    marked = json.loads(out.read_text())
    assert marked["baseline"]["regressions"] >= 1
    assert marked["cases"][0]["results"]["offline"]["vs_baseline"]["citation_support"]["status"] == "worse"
    assert marked["aggregates"]["offline"]["ALL"]["vs_baseline"]["source_coverage"]["status"] == "worse"
    assert "worse" in compared.output
    not_a_report = runner.invoke(cli, [*base, "--baseline", str(DATASET)])
    assert not_a_report.exit_code == 1 and "baseline" in not_a_report.output


def test_load_target_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert load_target("smoke").path == (REPO / "eval" / "suites" / "smoke.yaml").resolve()
