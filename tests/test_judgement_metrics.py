"""Judgement metrics (positions, differences, agreements, shifts, omissions) on hand-built Comparisons whose
answers are known, their pooling across cases, the fnc1_judgements dataset and its builder."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from compare.errors import ConfigError
from compare.evaluation.datasets import Case, load_dataset
from compare.evaluation.report import aggregate, check_threshold_names
from compare.evaluation.runner import CaseResult, score_judgements
from compare.judgement_metrics import document_position, position_scores
from compare.types import (
    Agreement,
    ClaimJudgement,
    Comparison,
    ComparisonMeta,
    DatedPosition,
    Difference,
    Omission,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourcePosition,
)

REPO = Path(__file__).parent.parent
DOCS = {"a": ["a1"], "b": ["b1"], "c": ["c1"], "d": ["d1"], "e": ["e1", "e2"], "f": ["f1", "f2"]}
#: a backs, b disputes, c reports, d ignores, e moves backs -> disputes, f keeps disputing
TRUTH = {
    "a1": "backs",
    "b1": "disputes",
    "c1": "reports",
    "d1": "not_addressed",
    "e1": "backs",
    "e2": "disputes",
    "f1": "disputes",
    "f2": "disputes",
}
DATES = {"e1": "2024-01-05", "e2": "2024-03-05", "f1": "2024-01-05", "f2": "2024-03-05"}


def make_case(**expected: Any) -> Case:
    positions = [
        {"source": s, "doc_id": d, "position": TRUTH[d], "date": DATES.get(d, "2024-02-01")}
        for s, docs in DOCS.items()
        for d in docs
    ]
    defaults = {
        "positions": positions,
        "differences": [["a", "b"], ["a", "f"]],
        "agreements": [],
        "shifting": ["e"],
        "steady": ["f"],
        "not_addressed": ["d"],
    }
    raw = {"name": "t", "inputs": {"question": "q?", "corpus": "x.jsonl"}, "expected": defaults | expected}
    return Case.model_validate(raw)


def quote(doc_id: str) -> Quote:
    return Quote(doc_id=doc_id, source=doc_id[0], char_start=0, char_end=1, text="x", status="verified")


def source_position(source: str, labels: dict[str, str], sure: bool = True) -> SourcePosition:
    dated = [
        DatedPosition(date=DATES.get(d), doc_id=d, label=label, confidence=0.9, sure=sure)  # type: ignore[arg-type]
        for d, label in labels.items()
    ]
    last = list(labels.values())[-1]
    return SourcePosition(source=source, label=last, confidence=0.9, sure=sure, by_date=dated)  # type: ignore[arg-type]


def shift(source: str, before: str, after: str) -> Shift:
    return Shift(
        source=source,
        topic="t",
        before=ShiftPoint(date="2024-01-05", stance=before, quote=quote(f"{source}1")),  # type: ignore[arg-type]
        after=ShiftPoint(date="2024-03-05", stance=after, quote=quote(f"{source}2")),  # type: ignore[arg-type]
        description="moved",
        kind="position",
        claim_id="target",
    )


def answer(
    labels: dict[str, str],
    *,
    sure: bool = True,
    differences: Sequence[tuple[str, str]] = (),
    agreements: Sequence[list[str]] = (),
    shifts: Sequence[Shift] = (),
    omitted: Sequence[str] = (),
) -> Comparison:
    """A comparison whose target claim gives each document the label in `labels` (doc_id -> label)."""
    positions = [
        source_position(s, {d: labels[d] for d in docs if d in labels}, sure)
        for s, docs in DOCS.items()
        if any(d in labels for d in docs)
    ]
    return Comparison(
        question="q?",
        target="t",
        target_is_proposition=True,
        claims=[ClaimJudgement(id="target", text="t", is_target=True, positions=positions)],
        differences=[
            Difference(
                claim="t",
                claim_id="target",
                positions=[Position(source=x, position="backs"), Position(source=y, position="disputes")],
            )
            for x, y in differences
        ],
        agreements=[Agreement(claim="t", claim_id="target", sources=s, quotes=[]) for s in agreements],
        omissions=[Omission(claim="t", claim_id="target", reported_by=[], not_reported_by=list(omitted))],
        shifts=list(shifts),
        meta=ComparisonMeta(backend="x", settings_hash="h", package_version="0"),
    )


def scored(case: Case, comparison: Comparison) -> CaseResult:
    result = CaseResult("fnc", case.name, "col")
    score_judgements(result, case, comparison)
    return result


PERFECT = answer(
    TRUTH,
    differences=[("a", "b"), ("a", "f")],
    shifts=[shift("e", "backs", "disputes")],
    omitted=["d"],
)


# -- one case --------------------------------------------------------------------------------------------


def test_a_perfect_answer_scores_one_everywhere() -> None:
    m = scored(make_case(), PERFECT).metrics
    for key in (
        "position_accuracy",
        "position_macro_f1",
        "position_sure_precision",
        "position_sure_coverage",
    ):
        assert m[key] == 1.0, key
    for name in ("difference", "omission", "position_shift"):
        assert (m[f"{name}_precision"], m[f"{name}_recall"]) == (1.0, 1.0), name
    assert m["position_shift_direction"] == 1.0 and m["steady_false_shift_rate"] == 0.0
    assert m["agreement_precision"] is None and m["agreements_expected"] == 0  # none expected, none given


def test_an_answer_wrong_everywhere_scores_zero() -> None:
    flipped = {
        "backs": "disputes",
        "disputes": "backs",
        "reports": "not_addressed",
        "not_addressed": "reports",
    }
    wrong = answer(
        {d: flipped[label] for d, label in TRUTH.items()},
        differences=[("b", "c")],
        agreements=[["b", "c"]],
        shifts=[shift("f", "disputes", "backs"), shift("a", "backs", "reports")],
        omitted=["c"],
    )
    m = scored(make_case(), wrong).metrics
    assert m["position_accuracy"] == 0.0 and m["position_macro_f1"] == 0.0
    assert m["position_sure_precision"] == 0.0
    for name in ("difference", "agreement", "omission", "position_shift"):
        assert m[f"{name}_precision"] == 0.0, name
    assert m["difference_recall"] == 0.0 and m["position_shift_recall"] == 0.0
    assert m["steady_false_shift_rate"] == 1.0
    assert m["position_shifts_predicted"] == 2  # a shift on a single-document source counts against precision


def test_abstaining_is_not_addressed_and_never_sure() -> None:
    empty = answer({})
    m = scored(make_case(), empty).metrics
    assert m["position_accuracy"] == pytest.approx(1 / 8)  # only the ignoring source is right
    assert m["position_sure_precision"] is None and m["position_sure_coverage"] == 0.0
    assert m["difference_precision"] is None and m["difference_recall"] == 0.0
    assert m["omission_recall"] == 0.0 and m["position_shift_recall"] == 0.0
    assert m["steady_false_shift_rate"] == 0.0


def test_unsure_positions_count_for_f1_but_not_for_sure_precision() -> None:
    unsure = answer(TRUTH, sure=False)
    m = scored(make_case(), unsure).metrics
    assert m["position_accuracy"] == 1.0
    assert m["position_sure_coverage"] == 0.0 and m["position_sure_precision"] is None
    assert m["omission_recall"] == 0.0  # an unsure not_addressed is not an omission


def test_a_source_without_dated_entries_takes_its_overall_label() -> None:
    overall = SourcePosition(source="e", label="disputes", confidence=0.8, sure=True)
    assert document_position(overall, "e1") == ("disputes", True)
    assert document_position(None, "e1") == ("not_addressed", False)


def test_pairs_with_a_shifting_source_are_not_judged() -> None:
    extra = answer(TRUTH, differences=[("a", "b"), ("e", "b")], agreements=[["a", "e"]])
    m = scored(make_case(), extra).metrics
    assert (m["differences_predicted"], m["difference_precision"]) == (1, 1.0)
    assert m["agreements_predicted"] == 0


def test_claim_stance_words_and_weak_differences() -> None:
    comparison = answer(TRUTH)
    comparison.differences = [
        Difference(
            claim="t",
            claim_id="target",
            positions=[Position(source="a", position="agree"), Position(source="b", position="disagree")],
        ),
        Difference(
            claim="t",
            claim_id="target",
            strength="weak",
            positions=[Position(source="a", position="backs"), Position(source="f", position="disputes")],
        ),
        Difference(
            claim="other",
            claim_id="c1",
            positions=[Position(source="c", position="backs"), Position(source="d", position="disputes")],
        ),
    ]
    m = scored(make_case(), comparison).metrics
    assert (m["differences_predicted"], m["differences_matched"]) == (1, 1)


def test_families_without_expected_values_are_not_measured() -> None:
    case = Case.model_validate({"name": "t", "inputs": {"question": "q?", "corpus": "x.jsonl"}})
    m = scored(case, PERFECT).metrics
    measured = {k: v for k, v in m.items() if v not in (None, 0)}
    assert measured == {}


# -- pooling -----------------------------------------------------------------------------------------------


def test_aggregates_pool_pairs_and_documents_not_case_means() -> None:
    one_right = answer(TRUTH, differences=[("a", "b")])
    three_wrong = answer(TRUTH, differences=[("b", "c"), ("c", "f"), ("b", "d")])
    results = [scored(make_case(), one_right), scored(make_case(), three_wrong)]
    for result in results:
        result.metrics |= {"error": 0, "latency_s": 0.1}
    values = aggregate(results)
    assert values["difference_precision"] == pytest.approx(1 / 4)  # a mean of case ratios would give 0.5
    assert values["difference_recall"] == pytest.approx(1 / 4)
    assert values["positions_expected"] == 16 and values["position_accuracy"] == 1.0
    assert values["position_majority_accuracy"] == 0.5  # disputes: b1, e2, f1, f2 of 8, in both cases


def test_position_scores_macro_f1_over_the_four_labels() -> None:
    scores = position_scores(
        [("backs", "backs", True), ("disputes", "backs", False), ("reports", "reports", True)]
    )
    assert scores.accuracy == pytest.approx(2 / 3)
    assert scores.macro_f1 == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert (scores.sure_precision, scores.sure_coverage) == (1.0, pytest.approx(2 / 3))


def test_judgement_thresholds_are_known_metrics() -> None:
    check_threshold_names(
        {"position_macro_f1": 0.65, "difference_precision": 0.8, "steady_false_shift_rate@offline": 0.1}, "t"
    )


# -- the dataset ---------------------------------------------------------------------------------------------


def test_expected_positions_accept_claim_stance_words_and_reject_bad_pairs(tmp_path: Path) -> None:
    case = make_case(positions=[{"source": "a", "doc_id": "a1", "position": "agree"}])
    assert case.expected.positions[0].position == "backs"
    corpus = tmp_path / "x.jsonl"
    corpus.write_text('{"id": "a1", "source": "a", "text": "t"}\n')
    bad = {
        "cases": [
            {
                "name": "bad",
                "inputs": {"question": "q?", "corpus": "x.jsonl"},
                "expected": {"differences": [["a", "a"]], "positions": [{"source": "a", "doc_id": "a1",
                             "position": "maybe"}], "shifted": ["a"]},
            }
        ]
    }  # fmt: skip
    (tmp_path / "bad.yaml").write_text(json.dumps(bad))
    with pytest.raises(ConfigError) as raised:
        load_dataset(tmp_path / "bad.yaml")
    message = raised.value.message
    assert "two different sources" in message and "unknown key 'expected.shifted'" in message
    assert "expected.positions.0.position" in message


def test_shipped_dataset_hides_labels_and_points_at_its_documents() -> None:
    dataset = load_dataset(REPO / "eval" / "datasets" / "fnc1_judgements.yaml")
    corpus = REPO / "eval" / "data" / "fnc1_judgements" / "articles.jsonl"
    articles = {a["id"]: a for a in map(json.loads, corpus.read_text(encoding="utf-8").splitlines())}
    assert 40 <= len(dataset.cases) <= 80 and corpus.stat().st_size < 3_000_000
    assert {key for a in articles.values() for key in a} == {
        "id",
        "event_id",
        "source",
        "outlet",
        "title",
        "date",
        "text",
    }
    assert len(articles) == sum(len(c.expected.positions) for c in dataset.cases)  # each body used once
    for case in dataset.cases:
        for want in case.expected.positions:
            doc = articles[want.doc_id]
            assert (doc["source"], doc["event_id"], doc["date"]) == (want.source, case.name, want.date)
        assert case.expected.not_addressed and case.inputs.filters.where == {"event_id": case.name}
    assert sum(1 for c in dataset.cases if c.expected.differences) >= 10
    assert sum(len(c.expected.shifting or []) for c in dataset.cases) >= 30


# -- the builder ---------------------------------------------------------------------------------------------


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_fnc1_judgements", REPO / "eval" / "build_fnc1_judgements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def fake_fnc1(folder: Path) -> Path:
    """Two stories: claim H (8 related bodies) and claim G (its bodies are unrelated to H)."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(3000)]
    texts = {body: " ".join(rng.choice(words) for _ in range(80)) + "." for body in range(1, 13)}
    folder.mkdir()
    (folder / "bodies.jsonl").write_text(
        "".join(json.dumps({"body_id": b, "text": t}) + "\n" for b, t in texts.items())
    )
    labels = {1: "agree", 2: "agree", 3: "agree", 4: "agree", 5: "disagree", 6: "disagree", 7: "discuss"}
    labels |= {8: "discuss"}
    rows = [{"headline": "Claim H is true", "body_id": b, "stance": s} for b, s in labels.items()]
    rows += [{"headline": "Claim H is true", "body_id": b, "stance": "unrelated"} for b in (9, 10)]
    rows += [{"headline": "Claim G? A question", "body_id": b, "stance": "agree"} for b in (9, 10, 11, 12)]
    (folder / "stances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_builder_is_deterministic_and_fills_every_role(tmp_path: Path) -> None:
    builder = load_builder()
    fnc1 = fake_fnc1(tmp_path / "fnc1")
    first = builder.build(fnc1, tmp_path / "one")
    builder.build(fnc1, tmp_path / "two")
    for part in ("data/fnc1_judgements/articles.jsonl", "datasets/fnc1_judgements.yaml"):
        assert (tmp_path / "one" / part).read_bytes() == (tmp_path / "two" / part).read_bytes()
    assert first["cases"] == 1  # the question headline is not a claim
    case = load_dataset(tmp_path / "one" / "datasets" / "fnc1_judgements.yaml").cases[0]
    roles = sorted(case.metadata["roles"].values())
    assert roles == ["backs", "disputes", "ignores", "reports", "shifting", "steady"]
    assert case.expected.shifting and case.expected.steady and case.expected.differences
    assert case.inputs.target == "Claim H is true"
