"""The claim-stance classifier: shipped model loads and reads real FNC-1 pairs; bad model files are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compare.analysis.claim_stance import (
    FEATURE_SPEC_VERSION,
    LABELS,
    SCALAR_FEATURES,
    ClaimStanceModel,
    Ensemble,
    Network,
    default_model_path,
    load_ensemble,
    prepare_text,
    save_ensemble,
)
from compare.chunking import sentence_spans
from compare.errors import ModelError
from tests.conftest import FIXTURES, REPO

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
def model(embedder: Any) -> ClaimStanceModel:
    return ClaimStanceModel.load(embedder)


@pytest.fixture(scope="module")
def predictions(model: ClaimStanceModel) -> list[tuple[dict[str, Any], Any]]:
    pairs = _pairs()
    return list(zip(pairs, model.predict_many([(p["headline"], p["text"]) for p in pairs]), strict=True))


def test_unrelated_pairs_are_unrelated(predictions: list[tuple[dict[str, Any], Any]]) -> None:
    unrelated = [answer for pair, answer in predictions if pair["stance"] == "unrelated"]
    assert len(unrelated) == 2
    assert [answer.label for answer in unrelated] == ["unrelated", "unrelated"]


def test_pairs_that_report_the_claim_are_not_unrelated(predictions: list[tuple[dict[str, Any], Any]]) -> None:
    related = [answer for pair, answer in predictions if pair["stance"] != "unrelated"]
    assert len(related) == 3
    assert all(answer.label in ("agree", "discuss") for answer in related)
    assert all(answer.probabilities["unrelated"] < 0.2 for answer in related)


def test_plain_report_of_the_deal_agrees(predictions: list[tuple[dict[str, Any], Any]]) -> None:
    answer = next(a for p, a in predictions if p["headline"].startswith("Microsoft to buy"))
    assert answer.label == "agree", answer.probabilities


def test_probabilities_and_confidence_are_consistent(predictions: list[tuple[dict[str, Any], Any]]) -> None:
    for _, answer in predictions:
        assert set(answer.probabilities) == set(LABELS)
        assert sum(answer.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert answer.confidence == pytest.approx(max(answer.probabilities.values()))
        assert answer.probabilities[answer.label] == pytest.approx(answer.confidence)


def test_evidence_offsets_slice_one_sentence_of_the_text(
    predictions: list[tuple[dict[str, Any], Any]],
) -> None:
    for pair, answer in predictions:
        assert (answer.evidence_start, answer.evidence_end) in sentence_spans(pair["text"])
        assert answer.evidence_end > answer.evidence_start


def test_evidence_for_the_deal_names_the_deal(predictions: list[tuple[dict[str, Any], Any]]) -> None:
    pair, answer = next((p, a) for p, a in predictions if p["headline"].startswith("Microsoft to buy"))
    evidence = pair["text"][answer.evidence_start : answer.evidence_end]
    assert "Mojang" in evidence


def test_batch_and_single_predictions_agree(model: ClaimStanceModel) -> None:
    pair = _pairs()[2]
    single = model.predict(pair["headline"], pair["text"])
    batch = model.predict_many([(p["headline"], p["text"]) for p in _pairs()])[2]
    assert single.label == batch.label
    # int8 activations are quantised per batch, so vectors (and probabilities) move a little with the batch
    assert single.confidence == pytest.approx(batch.confidence, abs=0.02)
    assert (single.evidence_start, single.evidence_end) == (batch.evidence_start, batch.evidence_end)


def test_empty_document_is_unrelated_and_empty_claim_is_refused(model: ClaimStanceModel) -> None:
    answer = model.predict("Microsoft buys Mojang", "   ")
    assert answer.label == "unrelated"
    assert (answer.evidence_start, answer.evidence_end) == (0, 0)
    with pytest.raises(ValueError):
        model.predict("  ", "Microsoft will buy Mojang.")


def test_claim_terms_next_to_a_negation_are_found() -> None:
    denied = prepare_text("Officials said the president never signed the order. The weather was fine.")
    assert {"president", "sign", "order"} <= denied.negated_terms[0]
    assert denied.negated_terms[1] == frozenset()
    plain = prepare_text("Officials said the president signed the order.")
    assert plain.negated_terms[0] == frozenset()


def test_shipped_metrics_match_the_shipped_model() -> None:
    metrics = json.loads((REPO / "compare" / "resources" / "claim_stance.metrics.json").read_text())
    assert metrics["feature_spec_version"] == FEATURE_SPEC_VERSION
    assert metrics["scalar_features"] == list(SCALAR_FEATURES)
    assert metrics["held_out"]["macro_f1"] > 2 * metrics["held_out"]["majority_baseline"]["macro_f1"]
    assert default_model_path().stat().st_size < 3_000_000


# ---------------------------------------------------------------------------------------------- bad files


def _tiny_ensemble(inputs: int = len(SCALAR_FEATURES)) -> Ensemble:
    rng = np.random.default_rng(0)
    network = Network(
        mean=np.zeros(inputs, np.float32),
        scale=np.ones(inputs, np.float32),
        weights=(rng.normal(size=(inputs, 3)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)),
        biases=(np.zeros(3, np.float32), np.zeros(4, np.float32)),
    )
    return Ensemble((network, network))


def test_save_and_load_round_trip(tmp_path: Path, embedder: Any) -> None:
    path = tmp_path / "model.npz"
    ensemble = _tiny_ensemble()
    save_ensemble(path, ensemble, embedder=embedder.name, dim=embedder.dim)
    loaded = load_ensemble(path, embedder.dim, embedder.name)
    x = np.random.default_rng(1).normal(size=(5, len(SCALAR_FEATURES))).astype(np.float32)
    assert np.allclose(loaded.probabilities(x), ensemble.probabilities(x), atol=1e-6)


def test_corrupt_model_file_raises_model_error_with_hint(tmp_path: Path, embedder: Any) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04 this is not a real zip archive")
    with pytest.raises(ModelError) as raised:
        ClaimStanceModel.load(embedder, path)
    assert "unreadable" in str(raised.value)
    assert raised.value.hint and "train_claim_stance.py" in raised.value.hint


def test_missing_model_file_raises_model_error(tmp_path: Path, embedder: Any) -> None:
    with pytest.raises(ModelError, match="not found") as raised:
        ClaimStanceModel.load(embedder, tmp_path / "absent.npz")
    assert raised.value.hint


@pytest.mark.parametrize(
    ("change", "message"),
    [("embedder", "embedder other-embedder"), ("dim", "dim 12"), ("inputs", "wrong input size")],
)
def test_mismatched_model_file_raises_model_error(
    tmp_path: Path, embedder: Any, change: str, message: str
) -> None:
    path = tmp_path / "model.npz"
    name = "other-embedder" if change == "embedder" else embedder.name
    dim = 12 if change == "dim" else embedder.dim
    inputs = len(SCALAR_FEATURES) + 1 if change == "inputs" else len(SCALAR_FEATURES)
    save_ensemble(path, _tiny_ensemble(inputs), embedder=name, dim=dim)
    with pytest.raises(ModelError, match=message) as raised:
        ClaimStanceModel.load(embedder, path)
    assert raised.value.hint and "train_claim_stance.py" in raised.value.hint


def test_model_from_another_feature_spec_is_refused(tmp_path: Path, embedder: Any) -> None:
    path = tmp_path / "model.npz"
    save_ensemble(path, _tiny_ensemble(), embedder=embedder.name, dim=embedder.dim)
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["spec_version"] = np.array(FEATURE_SPEC_VERSION - 1)
    np.savez_compressed(path, **arrays)
    with pytest.raises(ModelError, match=f"feature spec {FEATURE_SPEC_VERSION - 1}"):
        ClaimStanceModel.load(embedder, path)
