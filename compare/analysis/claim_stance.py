"""Claim-level stance: does a document agree with, dispute, merely report (discuss), or ignore a claim?

A small numpy classifier over features of a (claim, document) pair, trained on FNC-1 by
`scripts/train_claim_stance.py`: an ensemble of one-hidden-layer networks (each trained on a different inner
split of the training stories) whose probabilities are averaged. The feature code below is the only copy:
training and inference both call `select_sentences` and `pair_features`, so they cannot drift.
`FEATURE_SPEC_VERSION` changes whenever a feature changes; a model trained on another version is refused at
load, and so is one trained with another embedder.

Features of one pair (names in `SCALAR_FEATURES`; no raw embedding dimensions, which made the model learn the
training stories' topics rather than stance):
- embedding: cosine of the claim with the document's sentences (max, top-3 mean, mean, spread), with the lead
  (mean vector of the first `LEAD_SENTENCES`), and with the attention-weighted mean of the sentence vectors
  (softmax of similarity / `ATTENTION_TEMPERATURE`); where the best sentence sits in the document;
- lexical (after the FNC-1 baseline): Jaccard of content-word stems, share of the claim's stems, bigrams and
  trigrams found in the document and in its lead, best single-sentence coverage of the claim's stems;
- cues (refuting, negation, hedging, reporting, supporting words; debunking phrases such as "turned out",
  "no evidence", "was a hoax"): present in the claim, share of the 3 sentences most similar to the claim, in the
  most similar sentence, attention-weighted, share of all sentences, share of the first `CUE_LEAD_SENTENCES`, and
  log of the count in the whole text;
- negated claim terms: share of the claim's content stems that a sentence has within `NEGATION_WINDOW` words of
  a negation or refuting word (best sentence, top 3, attention-weighted, most in any sentence);
- polarity: parity of negations in the claim and in the most similar sentence, and whether they match;
- shape: claim is a question, log sentence count, log claim length.

Long documents: only the lead plus the `MAX_SENTENCES` sentences that share most content words with the claim
are embedded; lexical document features still use the whole text.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
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

FEATURE_SPEC_VERSION = 2
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
#: Public: other modules that need content words use the same list.
STOPWORDS = _STOPWORDS
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
# Multi-word debunking phrases, counted per sentence with one regex (a family of its own, after the word cues).
_DEBUNK = re.compile(
    r"\b(?:not (?:even )?(?:remotely )?(?:true|real|accurate)|isn't (?:true|real)|wasn't (?:true|real)"
    r"|no (?:evidence|proof|truth|basis)|turns? out|turned out|in fact|in reality|fact[- ]check\w*"
    r"|too good to be true|made[- ]up|never happened|(?:was|were|is|are) (?:a |an )?(?:hoax|fake|staged|satire)"
    r"|photoshop\w*|(?:false|fake|bogus) (?:story|stories|report|reports|claim|claims|rumou?rs?|news)"
    r"|not the case|urban legend|internet rumou?r|spread(?:ing)? (?:online|on social media)"
    r"|(?:has|have|had) been (?:debunked|denied)|no such)\b"
)
CUE_FAMILIES = (*_CUES, "debunk")
_NEGATION_INDEX = CUE_FAMILIES.index("negation")
_REFUTE_INDEX = CUE_FAMILIES.index("refute")
#: Words that turn a nearby claim term around: negations and refuting words.
_NEGATORS = _CUES["negation"] | _CUES["refute"]
#: A negator this many words or fewer from a claim term negates it.
NEGATION_WINDOW = 3
#: Sentences counted as the lead for the per-family lead shares.
CUE_LEAD_SENTENCES = 3
#: Public: other modules that need content words use the same list.
STOPWORDS = _STOPWORDS

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
        for where in ("claim", "top3", "best", "attended", "doc", "lead", "log_count")
    ),
    "negated_claim_terms_best",
    "negated_claim_terms_top3",
    "negated_claim_terms_attended",
    "negated_claim_terms_doc",
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


def _cue_counts(tokens: Sequence[str], sentence: str) -> list[int]:
    counts = [sum(token in cues for token in tokens) for cues in _CUES.values()]
    counts[_NEGATION_INDEX] += sum(token.endswith("n't") for token in tokens)
    return [*counts, len(_DEBUNK.findall(sentence.lower().replace("\u2019", "'")))]


def _is_negator(token: str) -> bool:
    return token in _NEGATORS or token.endswith("n't")


def _negated_stems(tokens: Sequence[str]) -> frozenset[str]:
    """Content stems of a sentence with a negation or refuting word at most NEGATION_WINDOW words away."""
    marks = [i for i, token in enumerate(tokens) if _is_negator(token)]
    if not marks:
        return frozenset()
    near = {j for i in marks for j in range(i - NEGATION_WINDOW, i + NEGATION_WINDOW + 1)}
    return frozenset(content_stems(tokens[j] for j in sorted(near) if 0 <= j < len(tokens)))


def _ngrams(sequences: Iterable[Sequence[str]], n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(seq[i : i + n]) for seq in sequences for i in range(len(seq) - n + 1))


@dataclass(frozen=True)
class PreparedText:
    """A text split into sentences with the per-sentence lexical facts the features need, computed once."""

    text: str
    spans: tuple[tuple[int, int], ...]
    sentence_terms: tuple[frozenset[str], ...]
    negated_terms: tuple[frozenset[str], ...]  # per sentence: content stems near a negator
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
    cues = np.array(
        [
            _cue_counts(sentence, text[start:end])
            for sentence, (start, end) in zip(tokens, spans, strict=True)
        ],
        dtype=np.float32,
    )
    return PreparedText(
        text=text,
        spans=spans,
        sentence_terms=tuple(frozenset(sentence) for sentence in stems),
        negated_terms=tuple(_negated_stems(sentence) for sentence in tokens),
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
    vector: np.ndarray  # float32, one value per name in SCALAR_FEATURES
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
    """Per cue family: in the claim, share of the top-3 sentences, best sentence, attention-weighted, whole text,
    lead sentences, and log of the count in the whole text."""
    present = (document.cues[list(selected)] > 0).astype(np.float32)
    rows = [
        claim.cues.sum(axis=0) > 0,
        present[order[:TOP_K]].mean(axis=0),
        present[order[0]],
        weights @ present,
        (document.cues > 0).mean(axis=0),
        (document.cues[:CUE_LEAD_SENTENCES] > 0).mean(axis=0),
        np.log1p(document.cues.sum(axis=0)),
    ]
    return [float(row[family]) for family in range(len(CUE_FAMILIES)) for row in rows]


def _negated_claim_terms(
    claim: PreparedText,
    document: PreparedText,
    selected: Sequence[int],
    order: np.ndarray,
    weights: np.ndarray,
) -> list[float]:
    """Share of the claim's content stems that a sentence states next to a negation or refuting word: in the
    best sentence, mean of the top 3, attention-weighted, and the most in any sentence of the document."""
    if not claim.terms:
        return [0.0, 0.0, 0.0, 0.0]
    shares = np.array([_share(claim.terms, document.negated_terms[i]) for i in selected], dtype=np.float32)
    most = max((_share(claim.terms, negated) for negated in document.negated_terms), default=0.0)
    return [float(shares[order[0]]), float(shares[order[:TOP_K]].mean()), float(weights @ shares), most]


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
    negated = _negated_claim_terms(claim, document, selected, order, weights)
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
    vector = np.array(embedding + _lexical(claim, document) + cues + negated + shape, dtype=np.float32)
    return PairFeatures(vector, sims, tuple(selected))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def evidence_sentence(label: Label, features: PairFeatures, document: PreparedText) -> int:
    """Index of the sentence that best shows `label`: among the 5 most claim-like, the first with a matching cue."""
    order = np.argsort(-features.similarities, kind="stable")[:5]
    families = {
        "disagree": ("refute", "debunk", "negation"),
        "discuss": ("hedge", "report"),
        "agree": ("support",),
    }
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


@dataclass(frozen=True)
class Ensemble:
    """Networks trained on different inner splits; their probabilities are averaged."""

    members: tuple[Network, ...]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, np.mean([member.probabilities(features) for member in self.members], axis=0))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return cast(np.ndarray, shifted / shifted.sum(axis=-1, keepdims=True))


def default_model_path() -> Path:
    return Path(str(resources.files("compare") / "resources" / "claim_stance.npz"))


def save_ensemble(path: Path, ensemble: Ensemble, *, embedder: str, dim: int) -> None:
    """One compressed npz: format facts (spec version, labels, feature names, embedder) and each member's arrays."""
    arrays: dict[str, np.ndarray] = {}
    for m, network in enumerate(ensemble.members):
        arrays[f"m{m}_mean"], arrays[f"m{m}_scale"] = network.mean, network.scale
        arrays |= {f"m{m}_weight_{i}": weight for i, weight in enumerate(network.weights)}
        arrays |= {f"m{m}_bias_{i}": bias for i, bias in enumerate(network.biases)}
    np.savez_compressed(
        path,
        labels=np.array(LABELS),
        scalar_features=np.array(SCALAR_FEATURES),
        spec_version=np.array(FEATURE_SPEC_VERSION),
        embedder=np.array(embedder),
        dim=np.array(dim),
        members=np.array(len(ensemble.members)),
        layers=np.array(len(ensemble.members[0].weights)),
        **{name: array.astype(np.float32) for name, array in arrays.items()},  # type: ignore[arg-type]
    )


def load_ensemble(path: Path, dim: int, embedder: str | None = None) -> Ensemble:
    """The model at `path`; missing, unreadable or built for other features/labels/embedder -> ModelError."""
    if not path.is_file():
        raise ModelError(f"claim stance model not found: {path}", hint=TRAIN_HINT)
    try:
        with np.load(path, allow_pickle=False) as data:
            facts = (int(data["spec_version"]), tuple(data["labels"].tolist()), int(data["dim"]))
            trained_embedder = str(data["embedder"])
            members, layers = int(data["members"]), int(data["layers"])
            ensemble = Ensemble(tuple(_member(data, m, layers) for m in range(members)))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ModelError(f"claim stance model {path} is unreadable ({error})", hint=TRAIN_HINT) from error
    wanted = (FEATURE_SPEC_VERSION, LABELS, dim)
    if facts != wanted or (embedder is not None and trained_embedder != embedder):
        raise ModelError(
            f"claim stance model {path} was built for feature spec {facts[0]}, labels {facts[1]}, embedder "
            f"{trained_embedder} (dim {facts[2]}); this code needs spec {wanted[0]}, labels {wanted[1]}, "
            f"embedder {embedder or 'any'} (dim {dim})",
            hint=TRAIN_HINT,
        )
    if not ensemble.members or any(n.weights[0].shape[0] != len(SCALAR_FEATURES) for n in ensemble.members):
        raise ModelError(f"claim stance model {path} has the wrong input size", hint=TRAIN_HINT)
    return ensemble


def _member(data: Mapping[str, np.ndarray], m: int, layers: int) -> Network:
    return Network(
        mean=data[f"m{m}_mean"],
        scale=data[f"m{m}_scale"],
        weights=tuple(data[f"m{m}_weight_{i}"] for i in range(layers)),
        biases=tuple(data[f"m{m}_bias_{i}"] for i in range(layers)),
    )


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
    def __init__(self, embedder: Embedder, network: Ensemble) -> None:
        self.embedder = embedder
        self.network = network

    @classmethod
    def load(cls, embedder: Embedder, path: Path | None = None) -> ClaimStanceModel:
        """The shipped model by default; a missing, corrupt or mismatched file raises ModelError."""
        return cls(embedder, load_ensemble(path or default_model_path(), embedder.dim, embedder.name))

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
