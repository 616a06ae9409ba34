"""The claim-stance cross-encoder: the shipped model loads, reads real FNC-1 pairs, calibrates its confidence,
shows the sentence behind a stance; its passages are the ones it was trained on; bad model files are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from compare.analysis.stance_model import LABELS, Judged, StanceModel, model_dir, shared_model
from compare.analysis.stance_passage import PASSAGE_SPEC, PASSAGE_WORDS, passage_spans
from compare.chunking import sentence_spans
from compare.errors import ModelError
from tests.conftest import FIXTURES

STANCE = FIXTURES / "stance"


def _pairs() -> list[dict[str, Any]]:
    bodies = {}
    for line in (STANCE / "fnc1_bodies.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bodies[row["body_id"]] = row["text"]
    rows = [
        json.loads(line) for line in (STANCE / "fnc1_pairs.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return [{**row, "text": bodies[row["body_id"]]} for row in rows]


@pytest.fixture(scope="module")
def model() -> StanceModel:
    return shared_model()


@pytest.fixture(scope="module")
def judged(model: StanceModel) -> list[tuple[dict[str, Any], Judged]]:
    pairs = _pairs()
    return list(zip(pairs, model.judge_many([(p["headline"], p["text"], None) for p in pairs]), strict=True))


def test_unrelated_pairs_are_unrelated(judged: list[tuple[dict[str, Any], Judged]]) -> None:
    unrelated = [answer for pair, answer in judged if pair["stance"] == "unrelated"]
    assert len(unrelated) == 2
    assert [answer.label for answer in unrelated] == ["unrelated", "unrelated"]


def test_pairs_that_report_the_claim_are_not_unrelated(judged: list[tuple[dict[str, Any], Judged]]) -> None:
    related = [answer for pair, answer in judged if pair["stance"] != "unrelated"]
    assert len(related) == 3
    assert all(answer.label in ("agree", "discuss") for answer in related), [a.probabilities for a in related]


DEAL = "Microsoft to buy 'Minecraft' creator Mojang for $2.5B"
DENIAL = (
    "Microsoft is not buying Mojang. The company denied reports on Monday that it would acquire the "
    "Minecraft maker, calling the story false. A spokesperson said no talks had taken place."
)


def test_a_plain_report_of_the_deal_backs_or_reports_it(judged: list[tuple[dict[str, Any], Judged]]) -> None:
    answer = next(a for p, a in judged if p["headline"] == DEAL)
    assert answer.label in ("agree", "discuss") and answer.probabilities["agree"] > 0.2, answer.probabilities


def test_a_denial_leans_to_disputing_the_claim(
    model: StanceModel, judged: list[tuple[dict[str, Any], Judged]]
) -> None:
    """One model, one example: not a guarantee of the label (disagree F1 is 0.35 on unseen stories; this
    denial still reads as 'agree' at 0.73, below the shown threshold), but a denial must move the model
    towards disputing, several times past where a plain report of the deal leaves it, and must not be shown
    as backing the claim."""
    report = next(a for p, a in judged if p["headline"] == DEAL)
    denial = model.judge(DEAL, DENIAL)
    assert denial.probabilities["disagree"] > 3 * report.probabilities["disagree"], denial.probabilities
    assert denial.probabilities["unrelated"] < 0.2
    assert not (denial.label == "agree" and denial.sure), denial


def test_probabilities_and_confidence_are_consistent(judged: list[tuple[dict[str, Any], Judged]]) -> None:
    for _, answer in judged:
        assert set(answer.probabilities) == set(LABELS)
        assert sum(answer.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert answer.confidence == pytest.approx(max(answer.probabilities.values()), abs=1e-3)
        assert answer.probabilities[answer.label] == pytest.approx(answer.confidence, abs=1e-3)


def test_evidence_is_one_sentence_of_the_passage_and_names_the_deal(
    judged: list[tuple[dict[str, Any], Judged]],
) -> None:
    for pair, answer in judged:
        assert answer.evidence in sentence_spans(pair["text"])
        assert answer.evidence in answer.passage.spans
    pair, answer = next((p, a) for p, a in judged if p["headline"] == DEAL)
    assert answer.evidence is not None
    assert "Mojang" in pair["text"][answer.evidence[0] : answer.evidence[1]]


def test_sure_follows_the_measured_thresholds(
    model: StanceModel, judged: list[tuple[dict[str, Any], Judged]]
) -> None:
    for _, answer in judged:
        if answer.label != "disagree":
            assert answer.sure == (answer.confidence >= model.config.thresholds[answer.label])


def test_batch_and_single_judgements_agree(model: StanceModel) -> None:
    pair = _pairs()[2]
    single = model.judge(pair["headline"], pair["text"])
    batch = model.judge_many([(p["headline"], p["text"], None) for p in _pairs()])[2]
    assert single.label == batch.label and single.evidence == batch.evidence
    assert single.confidence == pytest.approx(batch.confidence, abs=0.02)


def test_an_empty_text_is_unrelated(model: StanceModel) -> None:
    answer = model.judge("Microsoft buys Mojang", "   ")
    assert (answer.label, answer.evidence, answer.passage.text) == ("unrelated", None, "")


def test_passages_are_the_lead_plus_the_sentences_sharing_most_claim_words() -> None:
    text = (
        "Officials met on Monday. The weather was mild. "
        + " ".join(f"Filler sentence number {i} about nothing." for i in range(40))
        + " Microsoft agreed to buy Mojang for $2.5 billion."
    )
    passage = passage_spans("Microsoft to buy Mojang", text)
    assert passage.spans[0] == sentence_spans(text)[0]
    assert "Microsoft agreed to buy Mojang" in passage.text
    assert len(passage.text.split()) <= PASSAGE_WORDS
    assert passage.text == " ".join(text[a:b] for a, b in passage.spans)
    assert list(passage.spans) == sorted(passage.spans), "in document order"


def test_the_shipped_figures_were_measured_on_unseen_stories() -> None:
    config = json.loads((model_dir() / "model.json").read_text(encoding="utf-8"))
    assert config["passage_spec"] == PASSAGE_SPEC
    test = config["measured"]["test"]
    assert test["pairs"] == 10486, "the whole story-disjoint fnc1 subset"
    assert test["macro_f1"] >= test["majority_baseline"]["macro_f1"] + 0.4
    assert test["pairs_per_second"] > 0 and test["int8_agrees_with_fp32"] >= 0.95
    for label, shown in test["above_threshold"].items():
        assert shown["threshold"] == config["thresholds"][label]
    inputs = config["training"]["data"]["inputs"]
    assert {"fnc1_train/stances.jsonl", "fnc1/stances.jsonl"} <= set(inputs)
    assert set(config["thresholds"]) == set(LABELS)


def test_a_model_for_other_passages_is_refused(tmp_path: Path) -> None:
    for name in ("model.onnx", "model.json"):
        shutil.copy(model_dir() / name, tmp_path / name)
    config = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    (tmp_path / "model.json").write_text(json.dumps({**config, "passage_spec": "other"}), encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        StanceModel.load(tmp_path)
    assert "make stance-model" in (caught.value.hint or "")


def test_a_missing_or_corrupt_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        StanceModel.load(tmp_path)
    shutil.copy(model_dir() / "model.json", tmp_path / "model.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelError) as caught:
        StanceModel.load(tmp_path)
    assert "cannot load" in caught.value.message
