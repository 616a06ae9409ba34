"""Claim-level stance: does a document agree with, dispute, merely report (discuss), or ignore a claim?

One small numpy classifier over features of a (claim, document) pair, trained on FNC-1 by
`scripts/train_claim_stance.py`. The feature code below is the only copy: training and inference both call
`select_sentences` and `pair_features`, so they cannot drift. `FEATURE_SPEC_VERSION` changes whenever a feature
changes; a model trained on another version is refused at load.

Features of one pair (names in `SCALAR_FEATURES`, then the two vector blocks):
- embedding: cosine of the claim with the document's sentences (max, top-3 mean, mean, spread), with the lead
  (mean vector of the first `LEAD_SENTENCES`), and with the attention-weighted mean of the sentence vectors
  (softmax of similarity / `ATTENTION_TEMPERATURE`); where the best sentence sits in the document;
- lexical (after the FNC-1 baseline): Jaccard of content-word stems, share of the claim's stems, bigrams and
  trigrams found in the document and in its lead, best single-sentence coverage of the claim's stems;
- cue words (refuting, negation, hedging, reporting, supporting): present in the claim, share of the 3 sentences
  most similar to the claim, in the most similar sentence, attention-weighted, and share of all sentences;
- polarity: parity of negations in the claim and in the most similar sentence, and whether they match;
- shape: claim is a question, log sentence count, log claim length;
- vectors: claim * attended vector and |claim - attended vector| (elementwise, one block each).

Long documents: only the lead plus the `MAX_SENTENCES` sentences that share most content words with the claim
are embedded; lexical document features still use the whole text.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, cast

import numpy as np

from compare.chunking import sentence_spans
from compare.embedding import Embedder
from compare.errors import ModelError

Label = Literal["agree", "disagree", "discuss", "unrelated"]
LABELS: tuple[Label, ...] = ("agree", "disagree", "discuss", "unrelated")

FEATURE_SPEC_VERSION = 1
MAX_SENTENCES = 60
LEAD_SENTENCES = 2
TOP_K = 3
ATTENTION_TEMPERATURE = 0.05
TRAIN_HINT = "run `python scripts/train_claim_stance.py` to (re)build compare/resources/claim_stance.npz"

_STOPWORDS = frozenset(
    (
        "a about above after again against all am an and any are as at be because been before being below "
        "between both but by can did do does doing down during each few for from further had has have having "
        "he her here hers herself him himself his how i if in into is it its itself just me more most my "
        "myself now of off on once only or other our ours ourselves out over own same she should so some "
        "such than that the their theirs them themselves then there these they this those through to too "
        "under until up very was we were what when where which while who whom why will with you your yours "
        "yourself yourselves s t would also said says say new one two"
    ).split()
)
# Cue families, matched on lower-cased words (not stems). Order fixes the feature layout.
_CUES: dict[str, frozenset[str]] = {
    "refute": frozenset(
        (
            "fake faked fakes fraud fraudulent hoax hoaxes false falsely deny denies denied denying debunk "
            "debunked debunks debunking doubt doubts doubted doubtful bogus retract retracted retraction "
            "prank pranks pranked untrue myth refute refuted refutes dismissed dismisses rejected rejects "
            "baseless unfounded fabricated fabrication misleading satire satirical parody phony incorrect "
            "wrong nonsense lie lies lied despite nope"
        ).split()
    ),
    "negation": frozenset("not no never nor none nobody nothing neither without cannot".split()),
    "hedge": frozenset(
        (
            "reportedly allegedly alleged alleges purportedly purported apparently supposedly unconfirmed "
            "unverified rumor rumors rumour rumours rumored rumoured speculation speculated speculate may "
            "might could possibly possible perhaps appears appear seems seem suggests suggest suggested "
            "believed unclear unknown if whether claims claim claimed claiming"
        ).split()
    ),
    "report": frozenset(
        (
            "according reports reported report reporting told tweeted posted wrote writes stated states "
            "sources source spokesperson spokesman spokeswoman statement quoted cited via"
        ).split()
    ),
    "support": frozenset(
        (
            "confirmed confirms confirm confirming announced announces official officially revealed reveals "
            "indeed true truly proved proven proof verified definitely actually admitted admits acknowledged"
        ).split()
    ),
}
CUE_FAMILIES = tuple(_CUES)
_NEGATION_INDEX = CUE_FAMILIES.index("negation")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SUFFIXES = (
    "ational",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ings",
    "ing",
    "edly",
    "ies",
    "ied",
    "ed",
)

SCALAR_FEATURES: tuple[str, ...] = (
    "sim_max",
    "sim_top3",
    "sim_mean",
    "sim_std",
    "sim_lead",
    "sim_attended",
    "best_position",
    "jaccard_doc",
    "cover_doc",
    "cover_lead",
    "cover_best_sentence",
    "bigram_cover_doc",
    "trigram_cover_doc",
    "bigram_cover_lead",
    "trigram_cover_lead",
    *(
        f"{family}_{where}"
        for family in CUE_FAMILIES
        for where in ("claim", "top3", "best", "attended", "doc")
    ),
    "claim_negation_parity",
    "best_negation_parity",
    "negation_parity_match",
    "claim_question",
    "log_sentences",
    "log_claim_terms",
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'denies'/'denied'/'deny' without a lemmatiser."""
    word = word.removesuffix("'s")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased words; curly apostrophes folded so "isn’t" and "isn't" are one word."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def content_stems(tokens: Iterable[str]) -> list[str]:
    return [stem(token) for token in tokens if token not in _STOPWORDS and not token.endswith("n't")]


def _cue_counts(tokens: Sequence[str]) -> list[int]:
    counts = [sum(token in cues for token in tokens) for cues in _CUES.values()]
    counts[_NEGATION_INDEX] += sum(token.endswith("n't") for token in tokens)
    return counts


def _ngrams(sequences: Iterable[Sequence[str]], n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(seq[i : i + n]) for seq in sequences for i in range(len(seq) - n + 1))


@dataclass(frozen=True)
class PreparedText:
    """A text split into sentences with the per-sentence lexical facts the features need, computed once."""

    text: str
    spans: tuple[tuple[int, int], ...]
    sentence_terms: tuple[frozenset[str], ...]
    cues: np.ndarray  # (n_sentences, len(CUE_FAMILIES)) cue word counts
    terms: frozenset[str]
    lead_terms: frozenset[str]
    bigrams: frozenset[tuple[str, ...]]
    trigrams: frozenset[tuple[str, ...]]
    lead_bigrams: frozenset[tuple[str, ...]]
    lead_trigrams: frozenset[tuple[str, ...]]

    def sentence(self, index: int) -> str:
        start, end = self.spans[index]
        return self.text[start:end]


def prepare_text(text: str) -> PreparedText:
    spans = tuple(sentence_spans(text))
    tokens = [words(text[start:end]) for start, end in spans]
    stems = [content_stems(sentence) for sentence in tokens]
    lead = stems[:LEAD_SENTENCES]
    cues = np.array([_cue_counts(sentence) for sentence in tokens], dtype=np.float32)
    return PreparedText(
        text=text,
        spans=spans,
        sentence_terms=tuple(frozenset(sentence) for sentence in stems),
        cues=cues.reshape(len(spans), len(CUE_FAMILIES)),
        terms=frozenset(term for sentence in stems for term in sentence),
        lead_terms=frozenset(term for sentence in lead for term in sentence),
        bigrams=_ngrams(stems, 2),
        trigrams=_ngrams(stems, 3),
        lead_bigrams=_ngrams(lead, 2),
        lead_trigrams=_ngrams(lead, 3),
    )


def select_sentences(claim: PreparedText, document: PreparedText) -> list[int]:
    """Sentence indices to embed, in document order: the lead plus the MAX_SENTENCES sharing most claim words."""
    count = len(document.spans)
    if count <= LEAD_SENTENCES + MAX_SENTENCES:
        return list(range(count))
    overlap = [len(claim.terms & terms) for terms in document.sentence_terms]
    ranked = sorted(range(LEAD_SENTENCES, count), key=lambda index: (-overlap[index], index))
    return sorted([*range(LEAD_SENTENCES), *ranked[:MAX_SENTENCES]])


@dataclass(frozen=True)
class PairFeatures:
    vector: np.ndarray  # float32, len(SCALAR_FEATURES) + 2 * embedding dim
    similarities: np.ndarray  # cosine of the claim with each selected sentence
    selected: tuple[int, ...]  # sentence indices of the document, aligned with `similarities`


def _share(part: frozenset[tuple[str, ...]] | frozenset[str], whole: frozenset[object]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _lexical(claim: PreparedText, document: PreparedText) -> list[float]:
    union = claim.terms | document.terms
    best_cover = max((_share(claim.terms, terms) for terms in document.sentence_terms), default=0.0)
    return [
        len(claim.terms & document.terms) / len(union) if union else 0.0,
        _share(claim.terms, document.terms),
        _share(claim.terms, document.lead_terms),
        best_cover,
        _share(claim.bigrams, document.bigrams),
        _share(claim.trigrams, document.trigrams),
        _share(claim.bigrams, document.lead_bigrams),
        _share(claim.trigrams, document.lead_trigrams),
    ]


def _cue_features(
    claim: PreparedText,
    document: PreparedText,
    selected: Sequence[int],
    order: np.ndarray,
    weights: np.ndarray,
) -> list[float]:
    """Per cue family: in the claim, share of the top-3 sentences, best sentence, attention-weighted, whole text."""
    present = (document.cues[list(selected)] > 0).astype(np.float32)
    rows = [
        claim.cues.sum(axis=0) > 0,
        present[order[:TOP_K]].mean(axis=0),
        present[order[0]],
        weights @ present,
        (document.cues > 0).mean(axis=0),
    ]
    return [float(row[family]) for family in range(len(CUE_FAMILIES)) for row in rows]


def pair_features(
    claim: PreparedText,
    document: PreparedText,
    selected: Sequence[int],
    claim_vector: np.ndarray,
    sentence_vectors: np.ndarray,
) -> PairFeatures:
    """Features of one pair. `sentence_vectors[i]` is the embedding of sentence `selected[i]` of `document`."""
    if not selected:
        raise ValueError("the document has no sentences")
    sims = (sentence_vectors @ claim_vector).astype(np.float32)
    order = np.argsort(-sims, kind="stable")
    weights = np.exp((sims - sims.max()) / ATTENTION_TEMPERATURE)
    weights /= weights.sum()
    attended = _unit(weights @ sentence_vectors)
    lead_count = sum(1 for index in selected if index < LEAD_SENTENCES)
    lead = _unit(sentence_vectors[: max(1, lead_count)].mean(axis=0))
    best = int(order[0])
    embedding = [
        float(sims[best]),
        float(sims[order[:TOP_K]].mean()),
        float(sims.mean()),
        float(sims.std()),
        float(lead @ claim_vector),
        float(attended @ claim_vector),
        selected[best] / max(1, len(document.spans) - 1),
    ]
    cues = _cue_features(claim, document, selected, order, weights)
    claim_parity = float(claim.cues[:, _NEGATION_INDEX].sum() % 2)
    best_parity = float(document.cues[selected[best], _NEGATION_INDEX] % 2)
    shape = [
        claim_parity,
        best_parity,
        float(claim_parity == best_parity),
        float("?" in claim.text),
        math.log1p(len(document.spans)),
        math.log1p(len(claim.terms)),
    ]
    scalars = np.array(embedding + _lexical(claim, document) + cues + shape, dtype=np.float32)
    vector = np.concatenate([scalars, claim_vector * attended, np.abs(claim_vector - attended)])
    return PairFeatures(vector.astype(np.float32), sims, tuple(selected))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def evidence_sentence(label: Label, features: PairFeatures, document: PreparedText) -> int:
    """Index of the sentence that best shows `label`: among the 5 most claim-like, the first with a matching cue."""
    order = np.argsort(-features.similarities, kind="stable")[:5]
    families = {"disagree": ("refute", "negation"), "discuss": ("hedge", "report"), "agree": ("support",)}
    wanted = [CUE_FAMILIES.index(name) for name in families.get(label, ())]
    for position in order:
        index = features.selected[int(position)]
        if any(document.cues[index, family] > 0 for family in wanted):
            return index
    return features.selected[int(order[0])]


# ---------------------------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class Network:
    """Feature standardisation then dense layers (ReLU between, softmax last); weights[i] is (in, out)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        hidden = (features - self.mean) / self.scale
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = hidden @ weight + bias
            if layer < len(self.weights) - 1:
                hidden = np.maximum(hidden, 0.0)
        return softmax(hidden)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return cast(np.ndarray, shifted / shifted.sum(axis=-1, keepdims=True))


def default_model_path() -> Path:
    return Path(str(resources.files("compare") / "resources" / "claim_stance.npz"))


def save_network(path: Path, network: Network, *, embedder: str, dim: int) -> None:
    arrays = {f"weight_{i}": weight for i, weight in enumerate(network.weights)}
    arrays |= {f"bias_{i}": bias for i, bias in enumerate(network.biases)}
    np.savez_compressed(
        path,
        mean=network.mean.astype(np.float32),
        scale=network.scale.astype(np.float32),
        labels=np.array(LABELS),
        scalar_features=np.array(SCALAR_FEATURES),
        spec_version=np.array(FEATURE_SPEC_VERSION),
        embedder=np.array(embedder),
        dim=np.array(dim),
        layers=np.array(len(network.weights)),
        **{name: array.astype(np.float32) for name, array in arrays.items()},  # type: ignore[arg-type]
    )


def load_network(path: Path, dim: int) -> Network:
    if not path.is_file():
        raise ModelError(f"claim stance model not found: {path}", hint=TRAIN_HINT)
    try:
        with np.load(path, allow_pickle=False) as data:
            version, labels, layers = (
                int(data["spec_version"]),
                tuple(data["labels"].tolist()),
                int(data["layers"]),
            )
            trained_dim = int(data["dim"])
            network = Network(
                mean=data["mean"],
                scale=data["scale"],
                weights=tuple(data[f"weight_{i}"] for i in range(layers)),
                biases=tuple(data[f"bias_{i}"] for i in range(layers)),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ModelError(f"claim stance model {path} is unreadable ({error})", hint=TRAIN_HINT) from error
    if version != FEATURE_SPEC_VERSION or labels != LABELS or trained_dim != dim:
        raise ModelError(
            f"claim stance model {path} was trained for feature spec {version}, labels {labels}, dim "
            f"{trained_dim}; this code needs spec {FEATURE_SPEC_VERSION}, labels {LABELS}, dim {dim}",
            hint=TRAIN_HINT,
        )
    if network.weights[0].shape[0] != len(SCALAR_FEATURES) + 2 * dim:
        raise ModelError(f"claim stance model {path} has the wrong input size", hint=TRAIN_HINT)
    return network


# ---------------------------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class ClaimStance:
    """The document's stance toward the claim, and the sentence that shows it: text[evidence_start:evidence_end]."""

    label: Label
    confidence: float
    probabilities: dict[str, float]
    evidence_start: int
    evidence_end: int


class ClaimStanceModel:
    def __init__(self, embedder: Embedder, network: Network) -> None:
        self.embedder = embedder
        self.network = network

    @classmethod
    def load(cls, embedder: Embedder, path: Path | None = None) -> ClaimStanceModel:
        """The shipped model by default; a missing, corrupt or mismatched file raises ModelError."""
        return cls(embedder, load_network(path or default_model_path(), embedder.dim))

    def predict(self, claim: str, text: str) -> ClaimStance:
        return self.predict_many([(claim, text)])[0]

    def predict_many(self, pairs: Sequence[tuple[str, str]]) -> list[ClaimStance]:
        """All sentences and claims of the batch are embedded in one call; a text repeated across pairs is split
        and embedded once."""
        if any(not claim.strip() for claim, _ in pairs):
            raise ValueError("a claim is empty")
        claims = {claim: prepare_text(claim) for claim, _ in pairs}
        documents = {text: prepare_text(text) for _, text in pairs}
        selections = [select_sentences(claims[claim], documents[text]) for claim, text in pairs]
        vectors = self._embed(pairs, claims, documents, selections)
        features = [
            pair_features(
                claims[claim],
                documents[text],
                selected,
                vectors[claim],
                np.stack([vectors[(text, index)] for index in selected]),
            )
            for (claim, text), selected in zip(pairs, selections, strict=True)
            if selected
        ]
        stacked = np.stack([item.vector for item in features]) if features else None
        probabilities = iter(self.network.probabilities(stacked) if stacked is not None else ())
        scored = iter(features)
        return [
            self._stance(next(probabilities), next(scored), documents[text])
            if selected
            else _empty_document()
            for (_, text), selected in zip(pairs, selections, strict=True)
        ]

    def _embed(
        self,
        pairs: Sequence[tuple[str, str]],
        claims: dict[str, PreparedText],
        documents: dict[str, PreparedText],
        selections: list[list[int]],
    ) -> dict[object, np.ndarray]:
        keys: dict[object, str] = {claim: claim for claim in claims}
        for (_, text), selected in zip(pairs, selections, strict=True):
            for index in selected:
                keys.setdefault((text, index), documents[text].sentence(index))
        matrix = self.embedder.embed(list(keys.values()))
        return {key: matrix[row] for row, key in enumerate(keys)}

    def _stance(
        self, probabilities: np.ndarray, features: PairFeatures, document: PreparedText
    ) -> ClaimStance:
        best = int(np.argmax(probabilities))
        label = LABELS[best]
        start, end = document.spans[evidence_sentence(label, features, document)]
        return ClaimStance(
            label=label,
            confidence=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(LABELS, probabilities, strict=True)},
            evidence_start=start,
            evidence_end=end,
        )


def _empty_document() -> ClaimStance:
    """A document without any sentence cannot speak to the claim."""
    probabilities: dict[str, float] = {name: float(name == "unrelated") for name in LABELS}
    return ClaimStance("unrelated", 1.0, probabilities, 0, 0)
