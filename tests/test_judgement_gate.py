"""The judgement gate: labels an LLM gave, read again by the shipped claim-stance model on their own quotes.

Real texts: FNC-1's CNBC body (Microsoft will buy Mojang) and NYT body (Microsoft "in advanced talks", people
briefed said), and a written denial by a fictional wire service. Contested labels say so in every renderer,
confirmed ones are left as they are, counts add up, and comparisons saved before the gate still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from compare import render
from compare.analysis.engine import Engine
from compare.analysis.judgement_gate import (
    CONTEST_AT,
    GateCounts,
    QuoteReader,
    check_quote,
    gate_labels,
    quote_window,
)
from compare.analysis.stance_model import StanceModel, shared_model
from compare.chunking import sentence_spans
from compare.evaluation.html_report import _aggregates, _metric_cell
from compare.evaluation.report import METRICS, aggregate
from compare.evaluation.runner import CaseResult, _labels
from compare.ingest.readers import ReadOptions
from compare.settings import Settings
from compare.terminal import print_comparison
from compare.types import (
    Agreement,
    Claim,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourcePosition,
    SourceView,
    Stance,
)
from compare.view import build_view
from tests.comparisons import documents as judged_documents
from tests.comparisons import judged_comparison
from tests.conftest import FIXTURES, REPO
from tests.fakes import FakeOpenAIServer, reply

CLAIM = "Microsoft to buy Mojang for $2.5B"
DENIAL = (
    "Microsoft has denied a report that it will buy Mojang, the Swedish maker of Minecraft, for $2.5 billion. "
    "A Microsoft spokesperson said the report that it would buy Mojang was false and that no talks had taken "
    "place. Mojang's founder also dismissed the rumour on Twitter, calling it a hoax."
)
SAYS_IT_WILL_BUY = (
    'Microsoft will buy Stockholm-based game developer Mojang, the creator of the "Minecraft" video game '
    "franchise, for $2.5 billion."
)
IN_TALKS = (
    "Microsoft is in advanced talks to acquire the maker of the game Minecraft for more than $2 billion, people "
    "briefed on the discussions said on Tuesday."
)
DENIES = (
    "A Microsoft spokesperson said the report that it would buy Mojang was false and that no talks had taken "
    "place."
)
CONTESTED_DENIAL = "contested by the local model: Nordic Wire's quote reads as disputing"


def documents() -> dict[str, Document]:
    bodies = {}
    for line in (FIXTURES / "stance" / "fnc1_bodies.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bodies[row["body_id"]] = row["text"]
    made = [
        Document(id="cnbc-627", source="cnbc", outlet="CNBC", title="Microsoft buys Mojang", date="2014-09-15",
                 text=bodies[627]),
        Document(id="nyt-2169", source="nyt", outlet="The New York Times", title="Microsoft in talks",
                 date="2014-09-09", text=bodies[2169]),
        Document(id="wire-1", source="wire", outlet="Nordic Wire", title="Microsoft denies Mojang report",
                 date="2014-09-10", text=DENIAL),
    ]  # fmt: skip
    return {doc.id: doc for doc in made}


def quote(needle: str, status: str = "verified") -> Quote:
    doc = next(d for d in documents().values() if needle in d.text)
    start = doc.text.index(needle)
    return Quote(doc_id=doc.id, source=doc.source, date=doc.date, char_start=start,
                 char_end=start + len(needle), text=needle, status=status)  # type: ignore[arg-type]  # fmt: skip


def side(source: str, label: str, needle: str | None, confidence: float = 0.9) -> Position:
    quotes = [quote(needle)] if needle else []
    return Position(source=source, position=label, quotes=quotes, confidence=confidence)  # type: ignore[arg-type]


def view(source: str, claims: list[Claim] | None = None) -> SourceView:
    doc = next(d for d in documents().values() if d.source == source)
    return SourceView(source=source, outlet=doc.outlet, documents=[DocRef(doc_id=doc.id, date=doc.date)],
                      first_date=doc.date, last_date=doc.date, summary=f"{doc.outlet} on the deal.",
                      stance=Stance(label="positive", target=CLAIM, confidence=0.8), claims=claims or [])  # fmt: skip


def llm_comparison(**parts: Any) -> Comparison:
    """A comparison as the LLM backend leaves it with judgement.on_llm off: its own cross-source labels."""
    return Comparison(
        question="Is Microsoft buying Mojang?",
        target=CLAIM,
        sources=parts.pop("sources", [view("cnbc"), view("nyt"), view("wire")]),
        meta=ComparisonMeta(
            backend="openai-compatible:fake",
            model="fake",
            prompt="compare@1",
            settings_hash="abc",
            package_version="0.1.0",
        ),
        **parts,
    )


@pytest.fixture(scope="module")
def model() -> StanceModel:
    return shared_model()


def gated(comparison: Comparison, model: StanceModel, *, cross_source: bool = True) -> GateCounts:
    return gate_labels(comparison, documents(), model, cross_source=cross_source)


# -- one label at a time ---------------------------------------------------------------------------------------


def test_a_denial_labelled_as_backing_is_contested_and_loses_its_confidence(model: StanceModel) -> None:
    difference = Difference(
        claim=CLAIM,
        positions=[side("cnbc", "agree", SAYS_IT_WILL_BUY), side("wire", "agree", DENIES)],
        confidence=0.9,
    )
    comparison = llm_comparison(differences=[difference])
    gated(comparison, model)
    cnbc, wire = comparison.differences[0].positions
    assert wire.check is not None and wire.check.status == "contested", wire.check
    assert (wire.check.label, wire.check.reading) == ("backs", "disputes")
    assert wire.check.note == "model: backs; its quote reads as disputing"
    assert wire.confidence < 0.5 and comparison.differences[0].confidence == wire.confidence
    # CNBC's plain statement of the deal reads as reporting to the model, not surely enough to contest "backs"
    assert cnbc.check is not None and (cnbc.check.status, cnbc.check.reading) == ("unchecked", "reports")
    assert cnbc.check.note.startswith("the local model cannot tell: its quote reads as reporting at 0.")
    assert cnbc.confidence == 0.9
    assert cnbc.check.confidence is not None and cnbc.check.confidence < CONTEST_AT[("backs", "reports")]


def test_a_label_its_quote_bears_out_is_confirmed(model: StanceModel) -> None:
    difference = Difference(
        claim=CLAIM, positions=[side("nyt", "discuss", IN_TALKS), side("wire", "discuss", DENIES)]
    )
    comparison = llm_comparison(differences=[difference])
    gated(comparison, model)
    nyt, wire = comparison.differences[0].positions
    assert nyt.check is not None and (nyt.check.status, nyt.check.reading) == ("confirmed", "reports")
    assert nyt.check.note == "the local model agrees: its quote reads as reporting" and nyt.confidence == 0.9
    assert wire.check is not None and wire.check.note == "model: reports; its quote reads as disputing"


def test_an_agreement_is_contested_by_the_source_whose_quote_denies_it(model: StanceModel) -> None:
    both_state_it = Agreement(
        claim=CLAIM, sources=["cnbc", "nyt"], quotes=[quote(SAYS_IT_WILL_BUY), quote(IN_TALKS)]
    )
    with_the_denial = Agreement(
        claim=CLAIM, sources=["cnbc", "wire"], quotes=[quote(SAYS_IT_WILL_BUY), quote(DENIES)]
    )
    comparison = llm_comparison(agreements=[both_state_it, with_the_denial])
    gated(comparison, model)
    stated, denied = comparison.agreements
    assert (
        stated.check is not None and stated.check.status == "confirmed"
    )  # backing or reporting both state it
    assert denied.check is not None and (denied.check.status, denied.check.part) == ("contested", "wire")
    assert denied.check.note == "model: backs; wire's quote reads as disputing"


def test_a_shift_is_read_at_both_ends(model: StanceModel) -> None:
    reported_then_backed = Shift(
        source="wire", topic=CLAIM, description="from reporting the talks to backing the deal",
        before=ShiftPoint(date="2014-09-09", stance="discuss", quote=quote(IN_TALKS)),
        after=ShiftPoint(date="2014-09-10", stance="agree", quote=quote(DENIES)), score=0.8,
    )  # fmt: skip
    tone = {
        "before": reported_then_backed.before.model_copy(update={"stance": "positive"}),
        "after": reported_then_backed.after.model_copy(update={"stance": "negative"}),
    }
    on_a_topic = reported_then_backed.model_copy(update={"topic": "Microsoft and Mojang", **tone})
    comparison = llm_comparison(shifts=[reported_then_backed, on_a_topic])
    gated(comparison, model)
    shift, topic = comparison.shifts
    assert shift.check is not None and (shift.check.status, shift.check.part) == ("contested", "after")
    assert shift.check.note == "model: reports then backs; its later quote reads as disputing"
    assert shift.score < 0.5
    assert topic.check is None and topic.score == 0.8  # tone toward a topic is not a position to read


def test_a_label_without_a_verified_quote_is_unchecked_and_not_counted_as_read(model: StanceModel) -> None:
    dropped = Difference(claim=CLAIM, positions=[side("cnbc", "agree", None), side("nyt", "agree", None)])
    unverified = quote(DENIES, status="unverified")
    comparison = llm_comparison(
        differences=[dropped],
        agreements=[Agreement(claim=CLAIM, sources=["cnbc", "wire"], quotes=[unverified])],
    )
    counts = gated(comparison, model)
    checks = [p.check for p in comparison.differences[0].positions] + [comparison.agreements[0].check]
    assert all(
        c is not None and (c.status, c.note) == ("unchecked", "no verified quote to read") for c in checks
    )
    assert counts.as_dict() == {"checked": 0, "confirmed": 0, "contested": 0, "unchecked": 3}


def test_counts_add_up_and_meta_names_the_checking_model(model: StanceModel) -> None:
    claims = [Claim(id="wire-1", text="Microsoft will buy Mojang for $2.5 billion", quotes=[quote(DENIES)])]
    comparison = llm_comparison(
        sources=[view("cnbc"), view("nyt"), view("wire", claims)],
        differences=[Difference(claim=CLAIM, positions=[side("nyt", "discuss", IN_TALKS),
                                                        side("wire", "agree", DENIES), side("cnbc", "agree", None)])],
        agreements=[Agreement(claim=CLAIM, sources=["cnbc", "nyt"],
                              quotes=[quote(SAYS_IT_WILL_BUY), quote(IN_TALKS)])],
    )  # fmt: skip
    counts = gated(comparison, model)
    assert counts.as_dict() == {"checked": 4, "confirmed": 2, "contested": 2, "unchecked": 1}
    assert comparison.meta.labels == counts.as_dict() and comparison.meta.label_checker == model.method
    assert comparison.sources[2].claims[0].check is not None
    assert comparison.sources[2].claims[0].check.note == "model: states it; its quote reads as disputing"


def test_with_the_judgement_layer_only_the_models_per_source_claims_are_read(model: StanceModel) -> None:
    claims = [Claim(id="nyt-1", text="Microsoft is in talks to buy Mojang", quotes=[quote(IN_TALKS)])]
    agreement = Agreement(
        claim=CLAIM, sources=["cnbc", "wire"], quotes=[quote(SAYS_IT_WILL_BUY), quote(DENIES)]
    )
    comparison = llm_comparison(sources=[view("nyt", claims), view("wire")], agreements=[agreement])
    counts = gated(comparison, model, cross_source=False)
    assert comparison.agreements[0].check is None  # the measured layer's own label: not read again
    assert counts.as_dict() == {"checked": 1, "confirmed": 1, "contested": 0, "unchecked": 0}


def test_a_contested_position_is_not_enough_evidence_and_says_why(model: StanceModel) -> None:
    position = SourcePosition(source="wire", label="backs", confidence=0.92, quote=quote(DENIES))
    comparison = llm_comparison(target_is_proposition=True)
    comparison.sources[2].position = position
    gated(comparison, model)
    assert position.check is not None and position.check.status == "contested"
    assert not position.sure and position.confidence < 0.5
    cell = build_view(comparison, documents()).columns[2].position
    assert cell is not None and cell.state == "unsure" and cell.text.startswith("not enough evidence (0.")
    assert cell.check_text.startswith("contested by the local model: its quote reads as disputing (0.")
    rows = render.to_csv(comparison, documents()).splitlines()
    assert "position_check" in rows[0] and "contested by the local model" in rows[3]


def test_the_model_reads_the_quote_with_a_sentence_either_side(model: StanceModel) -> None:
    text = DENIAL
    spans = sentence_spans(text)
    middle = quote(DENIES)
    assert quote_window(spans, middle.char_start, middle.char_end) == spans
    assert quote_window(spans, 0, 10) == spans[:2] and quote_window(spans, 0, 10, context=0) == spans[:1]
    assert quote_window([], 3, 9) == [(3, 9)]
    reader = QuoteReader(model, documents())
    judged = reader.read(CLAIM, middle)
    assert judged is not None and judged.passage.spans == tuple(spans)
    assert reader.read(CLAIM, middle) is judged  # read once per comparison
    assert check_quote(judged, "backs").status == "contested"
    assert check_quote(judged, "disputes").status == "confirmed"


# -- shown and stored ---------------------------------------------------------------------------------------------


def _terminal(comparison: Comparison, docs: dict[str, Document]) -> str:
    console = Console(record=True, width=1000, color_system=None)
    print_comparison(console, comparison, docs)
    return console.export_text()


def _visible(page: str) -> str:
    from tests.test_render import _visible as visible

    return visible(page)


def test_every_renderer_shows_a_contested_label_in_the_same_words(model: StanceModel) -> None:
    comparison = llm_comparison(
        agreements=[Agreement(claim=CLAIM, sources=["cnbc", "wire"],
                              quotes=[quote(SAYS_IT_WILL_BUY), quote(DENIES)])],
        differences=[Difference(claim=CLAIM, positions=[side("nyt", "discuss", IN_TALKS),
                                                        side("wire", "agree", DENIES)])],
        shifts=[Shift(source="wire", topic=CLAIM, description="x",
                      before=ShiftPoint(date="2014-09-09", stance="discuss", quote=quote(IN_TALKS)),
                      after=ShiftPoint(date="2014-09-10", stance="agree", quote=quote(DENIES)), score=0.8)],
    )  # fmt: skip
    gated(comparison, model)
    docs = documents()
    shown = build_view(comparison, docs)
    expected = {shown.agreements[0].check_text, shown.differences[0].side("wire").check_text}  # type: ignore[union-attr]
    expected |= {shown.shifts[0].check_text, shown.footer.labels_line}
    assert all(expected) and shown.differences[0].side("nyt").check_text == ""  # type: ignore[union-attr]
    assert shown.agreements[0].check_text.startswith(CONTESTED_DENIAL + " (0.")
    assert shown.shifts[0].check_text.startswith(
        "contested by the local model: its later quote reads as disputing"
    )
    assert shown.footer.labels_line == (
        "4 model labels read by the local stance model: 1 confirmed, 3 contested, 0 not sure"
    )
    outputs = {
        "terminal": _terminal(comparison, docs),
        "markdown": render.to_markdown(comparison, docs),
        "html": _visible(render.to_html(comparison, docs)),
        "eval drill-down": _visible(_eval_drill_down(comparison)),
    }
    for name, text in outputs.items():
        missing = sorted(words for words in expected if words not in text)
        assert not missing, f"{name} lacks {missing}"


def _eval_drill_down(comparison: Comparison) -> str:
    from compare.evaluation.html_report import _answer

    return _answer(comparison.model_dump(mode="json"))


def _without(data: Any, keys: set[str]) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_without(item, keys) for item in data]
    return data


def test_a_comparison_saved_before_the_gate_still_loads_and_renders() -> None:
    old = _without(judged_comparison().model_dump(mode="json"), {"check", "labels", "label_checker"})
    assert '"check"' not in json.dumps(old) and '"label_checker"' not in json.dumps(old)
    loaded = Comparison.model_validate(old)
    assert loaded.meta.labels == {} and all(a.check is None for a in loaded.agreements)
    shown = build_view(loaded, judged_documents())
    assert shown.footer.labels_line == "" and "contested" not in render.to_markdown(
        loaded, judged_documents()
    )


# -- eval -----------------------------------------------------------------------------------------------------


def test_eval_reports_the_contested_rate_per_column(model: StanceModel) -> None:
    results = []
    for contested in (1, 0):
        comparison = llm_comparison()
        comparison.meta.labels = {
            "checked": 2,
            "confirmed": 1 - contested,
            "contested": contested,
            "unchecked": 1,
        }
        result = CaseResult("d", f"case{contested}", "fake compare@1")
        _labels(result, comparison)
        results.append(result)
    assert [r.metrics["contested_rate"] for r in results] == [0.5, 0.0]
    offline = CaseResult("d", "case", "offline")
    _labels(offline, llm_comparison())
    assert offline.metrics["contested_rate"] is None and offline.metrics["labels_checked"] == 0
    pooled = aggregate(results)
    assert (pooled["contested_rate"], pooled["labels_checked"], pooled["labels_contested"]) == (0.25, 4, 1)
    assert aggregate([offline])["contested_rate"] is None
    assert METRICS["contested_rate"].higher_is_better is False
    report = {"columns": [{"label": "fake compare@1"}], "aggregates": {"fake compare@1": {"ALL": pooled}}}
    assert '<td>contested_rate</td><td class="">0.250</td>' in _aggregates(report)
    assert "contested_rate 0.500" in _metric_cell({"metrics": results[0].metrics})


# -- end to end: the engine, a loopback OpenAI server, on_llm off -------------------------------------------------


def _analysis(source: str, doc_id: str, claim: str, said: str) -> dict[str, Any]:
    return {
        "source": source,
        "summary": f"{source} on Microsoft and Mojang.",
        "stance": "positive",
        "confidence": 0.8,
        "stance_quotes": [{"doc_id": doc_id, "text": said}],
        "claims": [{"id": f"{source}-1", "claim": claim, "quotes": [{"doc_id": doc_id, "text": said}]}],
        "positions": [],
    }


def test_the_engine_shows_a_denial_the_model_calls_backing_as_contested(
    services: Any, tmp_path: Path
) -> None:
    corpus = tmp_path / "mojang.jsonl"
    corpus.write_text("".join(d.model_dump_json() + "\n" for d in documents().values()), encoding="utf-8")
    assert services.ingest([str(corpus)], ReadOptions()).count("added") == 3
    settings: Settings = services.settings
    settings = settings.model_copy(update={
        "judgement": settings.judgement.model_copy(update={"on_llm": False}),
        "llm": settings.llm.model_copy(update={"cache": False, "max_retries": 1, "timeout_s": 10.0,
                                               "structured_method": "json_schema"}),
    })  # fmt: skip
    answer = {
        "sources": [
            _analysis("cnbc", "cnbc-627", "Microsoft will buy Mojang for $2.5 billion", SAYS_IT_WILL_BUY),
            _analysis("nyt", "nyt-2169", "Microsoft is in talks to buy Mojang", IN_TALKS),
            # the fake model takes the wire's denial for a statement of the deal
            _analysis("wire", "wire-1", "Microsoft will buy Mojang for $2.5 billion", DENIES),
        ],
        "agreements": [{"claim": CLAIM, "claim_ids": ["cnbc-1", "wire-1"]}],
        "differences": [],
        "omissions": [],
        "shifts": [],
    }
    with FakeOpenAIServer([reply(answer)]) as server:
        engine = Engine(settings, services.store, services.embedder)
        comparison = engine.compare(
            "Is Microsoft buying Mojang for $2.5B?", backend=f"openai-compatible:fake@{server.base_url}"
        )
    assert (
        comparison.meta.judgement_model is None and len(comparison.agreements) == 1
    )  # the model's own labels
    agreement = comparison.agreements[0]
    assert agreement.check is not None and (agreement.check.status, agreement.check.part) == (
        "contested",
        "wire",
    )
    assert comparison.meta.labels == {"checked": 4, "confirmed": 1, "contested": 2, "unchecked": 1}
    stored = services.store.get_documents(sorted({q.doc_id for q in comparison.presented_quotes()}))
    page = render.to_markdown(comparison, stored)
    assert CONTESTED_DENIAL in page and "2 contested" in page
    assert CONTESTED_DENIAL in _terminal(comparison, stored)
    assert Comparison.model_validate_json(render.to_json(comparison)) == comparison


def test_contest_thresholds_are_the_calibrated_ones() -> None:
    """CONTEST_AT is what eval/calibrate_judgement_gate.py chose, and each pair it lists was measured on the
    unseen fnc1 subset at few false contests."""
    calibration = json.loads(
        (REPO / "eval" / "calibration" / "judgement_gate.json").read_text(encoding="utf-8")
    )
    chosen = {tuple(k.split("->")): v["threshold"] for k, v in calibration["pairs"].items()}
    assert {k: v for k, v in chosen.items() if v is not None} == CONTEST_AT
    assert ("disputes", "backs") not in CONTEST_AT  # the model reads too many disputing quotes as backing
    for key, figures in calibration["pairs"].items():
        if figures["threshold"] is not None:
            assert figures["test"]["false_contest_rate"] <= 0.03, key
