"""Claim stance by a cross-encoder: does a text back, dispute, merely report, or ignore a claim?

all-MiniLM-L6-v2 fine-tuned on FNC-1's training split as a 4-way classifier over "[CLS] claim [SEP] passage
[SEP]" (`scripts/train_stance_model.py`), exported to ONNX and quantized to int8 (`scripts/build_stance_onnx.py`);
it runs on onnxruntime, no torch. The passage is what `stance_passage.passage_spans` selects, the same function
training used. Probabilities are temperature-calibrated on held-out training stories; `thresholds` are, per
label, the lowest confidence at which that label reached its target precision on those stories. A label under
its threshold is "not enough evidence", never shown as the label; so is a `disagree` whose evidence sentence has
no refuting or negating word (nothing a reader could check the dispute against). Measured figures: `model.json`
beside the model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from compare.analysis.lexicon import CUE_WORDS, content_stems, words
from compare.analysis.stance_passage import PASSAGE_SPEC, Passage, claim_terms, passage_spans
from compare.embedding import create_session, default_threads, load_tokenizer, pad_encodings
from compare.errors import ModelError

Label = Literal["agree", "disagree", "discuss", "unrelated"]
LABELS: tuple[Label, ...] = ("agree", "disagree", "discuss", "unrelated")
BUILD_HINT = "run `make stance-model` to rebuild compare/resources/stance/"
_DISPUTE_CUES = CUE_WORDS["refute"] | CUE_WORDS["negation"]


def model_dir() -> Path:
    return Path(str(resources.files("compare.resources") / "stance"))


@dataclass(frozen=True)
class StanceConfig:
    version: str
    temperature: float
    max_len: int
    thresholds: dict[str, float]

    @classmethod
    def read(cls, path: Path) -> StanceConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("passage_spec") != PASSAGE_SPEC:
            raise ModelError(
                f"the stance model at {path.parent} was trained on passages '{data.get('passage_spec')}', "
                f"this code selects '{PASSAGE_SPEC}'",
                hint=BUILD_HINT,
            )
        return cls(
            version=str(data["version"]),
            temperature=float(data["temperature"]),
            max_len=int(data["max_len"]),
            thresholds={k: float(v) for k, v in data.get("thresholds", {}).items()},
        )


@dataclass(frozen=True)
class Judged:
    """The stance of one text toward one claim. `evidence` is a sentence span of the text (None if empty)."""

    label: Label
    confidence: float
    probabilities: dict[str, float]
    sure: bool
    evidence: tuple[int, int] | None
    passage: Passage


class StanceModel:
    """The loaded cross-encoder. Thread-safe for reads (onnxruntime sessions are)."""

    def __init__(self, session: Any, tokenizer: Any, config: StanceConfig) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.config = config

    @property
    def method(self) -> str:
        return f"claim-stance-xenc@{self.config.version}"

    @classmethod
    def load(cls, directory: Path | None = None, threads: int = 0) -> StanceModel:
        directory = directory or model_dir()
        onnx_file, config_file = directory / "model.onnx", directory / "model.json"
        if not onnx_file.is_file() or not config_file.is_file():
            raise ModelError(f"no stance model in {directory}", hint=BUILD_HINT)
        config = StanceConfig.read(config_file)
        try:
            session = create_session(onnx_file, threads or default_threads())
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load the stance model {onnx_file}: {exc}", hint=BUILD_HINT) from exc
        return cls(session, pair_tokenizer(config.max_len), config)

    # -- scoring -----------------------------------------------------------------------------------------

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(n, 4) calibrated probabilities in LABELS order, for (claim, passage) pairs."""
        out = np.zeros((len(pairs), len(LABELS)), dtype=np.float32)
        if not pairs:
            return out
        # One pair per run, never a batch: the int8 graph quantizes activations with one scale per tensor, so
        # a padded batch lets the other pairs in it move a pair's probabilities (0.39 vs 0.53 "agree" seen for
        # one pair) and a judgement would depend on what else the question retrieved. Batching was no faster
        # on 2 cores (bench/stance.py: 55 pairs/s either way).
        for row, encoding in enumerate(self.tokenizer.encode_batch([(c, p) for c, p in pairs])):
            logits = self.session.run(["logits"], pad_encodings([encoding]))[0]
            out[row] = _softmax(logits / self.config.temperature)[0]
        return out

    def judge_many(self, items: Sequence[tuple[str, str, Sequence[tuple[int, int]] | None]]) -> list[Judged]:
        """Each (claim, text, sentence spans to choose from or None for the whole text) judged once."""
        passages = [passage_spans(claim, text, spans) for claim, text, spans in items]
        probs = self.probabilities(
            [(claim, p.text) for (claim, _, _), p in zip(items, passages, strict=True)]
        )
        judged = []
        for (claim, text, _), passage, row in zip(items, passages, probs, strict=True):
            best = int(np.argmax(row))
            label = LABELS[best] if passage.text else "unrelated"
            confidence = float(row[best]) if passage.text else 1.0
            evidence = evidence_span(claim, text, passage, label)
            sure = confidence >= self.config.thresholds.get(label, 0.0)
            if label == "disagree" and not _has_dispute_cue(text, evidence):
                sure = (
                    False  # "disputes" with no refuting or negating word to show for it: not enough evidence
                )
            judged.append(
                Judged(
                    label=label,
                    confidence=confidence,
                    probabilities={k: round(float(v), 4) for k, v in zip(LABELS, row, strict=True)},
                    sure=sure,
                    evidence=evidence,
                    passage=passage,
                )
            )
        return judged

    def judge(self, claim: str, text: str, spans: Sequence[tuple[int, int]] | None = None) -> Judged:
        return self.judge_many([(claim, text, spans)])[0]


def evidence_span(claim: str, text: str, passage: Passage, label: str) -> tuple[int, int] | None:
    """The passage sentence that shows the stance: most claim terms shared; for a dispute, a sentence with
    a refuting or negating word among those sharing claim terms is preferred."""
    if not passage.spans:
        return None
    terms = claim_terms(claim)

    def score(span: tuple[int, int]) -> tuple[float, int]:
        tokens = words(text[span[0] : span[1]])
        overlap = len(terms & frozenset(content_stems(tokens)))
        cue = (
            label == "disagree"
            and overlap > 0
            and any(t in _DISPUTE_CUES or t.endswith("n't") for t in tokens)
        )
        return (overlap + (2.5 if cue else 0.0), -span[0])

    return max(passage.spans, key=score)


def _has_dispute_cue(text: str, span: tuple[int, int] | None) -> bool:
    if span is None:
        return False
    return any(t in _DISPUTE_CUES or t.endswith("n't") for t in words(text[span[0] : span[1]]))


def pair_tokenizer(max_len: int) -> Any:
    """The embedder's WordPiece tokenizer, truncating only the passage of a (claim, passage) pair."""
    tokenizer = load_tokenizer(truncate=False)
    tokenizer.enable_truncation(max_length=max_len, strategy="only_second")
    return tokenizer


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_LOADED: dict[Path, StanceModel] = {}
_LOCK = threading.Lock()


def shared_model(directory: Path | None = None) -> StanceModel:
    """One loaded model per process (the CLI, the app and reports share it)."""
    key = directory or model_dir()
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = StanceModel.load(key)
        return _LOADED[key]
