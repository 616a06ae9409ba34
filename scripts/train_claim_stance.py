"""Train the claim stance classifier on FNC-1 and write compare/resources/claim_stance.{npz,metrics.json}.

    python scripts/train_claim_stance.py [--data /work/shared/corpus/fnc1] [--seed 13]

Held-out split by story: claims and bodies joined by a related pair (agree/disagree/discuss) form one story
(a connected component of the claim-body graph; `unrelated` pairs are not edges, or everything would be one
story). About `--test-share` of the related pairs' stories are held out with a fixed seed; an unrelated pair is
kept only when its claim and its body fall on the same side, so no test claim or body is seen in training.
The held-out stories are scored once, at the end; nothing is chosen on them.

Features: `compare.analysis.claim_stance.pair_features` (documented there), the same function inference uses.
Model: an ensemble of `--members` networks (standardised features -> one ReLU hidden layer -> softmax,
class-weighted cross-entropy, Adam, L2). Each member holds out a different seeded story split of the training
stories (about 15%) for early stopping on macro-F1, so together the members learn from every training story
and their averaged probabilities are steadier than one network's. Plain numpy; deterministic for a seed.

The settings were chosen by repeated story hold-outs inside the training stories only: dropping the raw
embedding dimensions, the v2 cue and negated-claim-term features (both compared against the feature code of
spec 1), class weights at inverse frequency and 9 members. `--select` reruns that comparison for the training
settings and prints it; it never touches the held-out stories.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.analysis.claim_stance import (  # noqa: E402
    FEATURE_SPEC_VERSION,
    LABELS,
    SCALAR_FEATURES,
    Ensemble,
    Network,
    PreparedText,
    pair_features,
    prepare_text,
    save_ensemble,
    select_sentences,
)
from compare.embedding import Embedder, get_embedder  # noqa: E402
from compare.settings import Settings  # noqa: E402

DEFAULT_DATA = Path("/work/shared/corpus/fnc1")
RESOURCES = ROOT / "compare" / "resources"


@dataclass(frozen=True)
class Pair:
    claim: str
    body_id: int
    label: int  # index into LABELS


@dataclass(frozen=True)
class Corpus:
    bodies: dict[int, str]
    pairs: list[Pair]


def load_corpus(data: Path) -> Corpus:
    bodies = {row["body_id"]: row["text"] for row in _jsonl(data / "bodies.jsonl")}
    pairs = [
        Pair(row["headline"], row["body_id"], LABELS.index(row["stance"]))
        for row in _jsonl(data / "stances.jsonl")
    ]
    return Corpus(bodies, pairs)


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        yield from (json.loads(line) for line in handle if line.strip())


# ---------------------------------------------------------------------------------------------- story split

UNRELATED = LABELS.index("unrelated")


def stories(pairs: Sequence[Pair]) -> dict[object, int]:
    """Story id of every claim ('c', text) and body ('b', id): connected components over related pairs."""
    parent: dict[object, object] = {}

    def root(node: object) -> object:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        claim, body = root(("c", pair.claim)), root(("b", pair.body_id))
        if pair.label != UNRELATED:
            parent[claim] = body
    roots = sorted({root(node) for node in list(parent)}, key=repr)
    number = {node: index for index, node in enumerate(roots)}
    return {node: number[root(node)] for node in parent}


def story_split(pairs: Sequence[Pair], share: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(kept, held out): whole stories, held out so each related label keeps about `share` of its pairs;
    pairs whose claim and body fall on different sides are dropped."""
    story = stories(pairs)
    held = _held_out_stories(pairs, story, share, seed)
    kept: list[Pair] = []
    out: list[Pair] = []
    for pair in pairs:
        claim_out, body_out = story[("c", pair.claim)] in held, story[("b", pair.body_id)] in held
        if claim_out == body_out:
            (out if claim_out else kept).append(pair)
    return kept, out


def _held_out_stories(pairs: Sequence[Pair], story: dict[object, int], share: float, seed: int) -> set[int]:
    """Greedy over stories in a seeded random order: hold one out when that brings the held-out count of every
    related label closer to `share` of its total. Stories without related pairs are held out at random."""
    counts = np.zeros((max(story.values()) + 1, len(LABELS) - 1))
    for pair in pairs:
        if pair.label != UNRELATED:
            counts[story[("c", pair.claim)], pair.label] += 1
    target = share * counts.sum(axis=0)
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    taken = np.zeros_like(target)
    for number in rng.permutation(len(counts)).tolist():
        if not counts[number].any():
            if rng.random() < share:
                held.add(number)
        elif np.sum(((taken + counts[number] - target) / target) ** 2) < np.sum(
            ((taken - target) / target) ** 2
        ):
            held.add(number)
            taken += counts[number]
    return held


def describe(pairs: Sequence[Pair]) -> dict[str, object]:
    story = stories(pairs)
    counts = Counter(LABELS[pair.label] for pair in pairs)
    return {
        "pairs": len(pairs),
        "claims": len({pair.claim for pair in pairs}),
        "bodies": len({pair.body_id for pair in pairs}),
        "stories": len(set(story.values())),
        "labels": {label: counts.get(label, 0) for label in LABELS},
    }


# ---------------------------------------------------------------------------------------------- features


@dataclass
class EmbeddedCorpus:
    claims: dict[str, PreparedText]
    bodies: dict[int, PreparedText]
    claim_vectors: dict[str, np.ndarray]
    sentence_vectors: dict[int, np.ndarray]  # body id -> (n_sentences, dim), every sentence


def embed_corpus(corpus: Corpus, embedder: Embedder) -> EmbeddedCorpus:
    """Every body sentence and every claim embedded once; pairs then only slice these caches."""
    claims = sorted({pair.claim for pair in corpus.pairs})
    prepared_claims = {claim: prepare_text(claim) for claim in claims}
    prepared_bodies = {body_id: prepare_text(text) for body_id, text in sorted(corpus.bodies.items())}
    texts = list(claims)
    for body in prepared_bodies.values():
        texts.extend(body.sentence(index) for index in range(len(body.spans)))
    matrix = embedder.embed(texts)
    claim_vectors = {claim: matrix[row] for row, claim in enumerate(claims)}
    sentence_vectors, row = {}, len(claims)
    for body_id, body in prepared_bodies.items():
        sentence_vectors[body_id] = matrix[row : row + len(body.spans)]
        row += len(body.spans)
    return EmbeddedCorpus(prepared_claims, prepared_bodies, claim_vectors, sentence_vectors)


def feature_matrix(pairs: Sequence[Pair], embedded: EmbeddedCorpus) -> tuple[np.ndarray, np.ndarray]:
    rows = []
    for pair in pairs:
        claim, body = embedded.claims[pair.claim], embedded.bodies[pair.body_id]
        selected = select_sentences(claim, body)
        vectors = embedded.sentence_vectors[pair.body_id][selected]
        rows.append(pair_features(claim, body, selected, embedded.claim_vectors[pair.claim], vectors).vector)
    return np.stack(rows), np.array([pair.label for pair in pairs])


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 150
    patience: int = 20
    class_weight_power: float = 1.0  # 1 = inverse frequency, 0 = unweighted
    members: int = 9  # networks in the ensemble, each with its own early-stopping stories


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    weights = (counts.sum() / (len(LABELS) * np.maximum(counts, 1))) ** power
    return weights / (weights @ counts / counts.sum())


def init_network(inputs: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> Network:
    mean = inputs.mean(axis=0)
    std = inputs.std(axis=0)
    scale = np.where(std > 1e-6, std, 1.0)
    sizes = [inputs.shape[1], config.hidden, len(LABELS)] if config.hidden else [inputs.shape[1], len(LABELS)]
    weights = tuple(
        rng.normal(0, np.sqrt(2 / n_in), (n_in, n_out)) for n_in, n_out in itertools.pairwise(sizes)
    )
    biases = tuple(np.zeros(n_out) for n_out in sizes[1:])
    return Network(mean, scale, weights, biases)


def gradients(network: Network, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> list[np.ndarray]:
    """d(weighted mean cross-entropy)/d(each weight and bias), in the order weights..., biases..."""
    activations = [(x - network.mean) / network.scale]
    for layer, (weight, bias) in enumerate(zip(network.weights, network.biases)):
        out = activations[-1] @ weight + bias
        activations.append(np.maximum(out, 0.0) if layer < len(network.weights) - 1 else out)
    logits = activations.pop()
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    delta = probs
    delta[np.arange(len(y)), y] -= 1
    delta *= (sample_weight / sample_weight.sum())[:, None]
    grad_w, grad_b = [], []
    for layer in reversed(range(len(network.weights))):
        grad_w.append(activations[layer].T @ delta)
        grad_b.append(delta.sum(axis=0))
        if layer:
            delta = (delta @ network.weights[layer].T) * (activations[layer] > 0)
    return grad_w[::-1] + grad_b[::-1]


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(list(per_class_f1(truth, predicted).values())))


def per_class_f1(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    scores: dict[str, float] = {}
    for index, label in enumerate(LABELS):
        tp = np.sum((predicted == index) & (truth == index))
        denominator = np.sum(predicted == index) + np.sum(truth == index)
        scores[label] = float(2 * tp / denominator) if denominator else 0.0
    return scores


def train(
    fit: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], config: TrainConfig, seed: int
) -> tuple[Network, dict[str, float]]:
    """Adam on mini-batches; keeps the weights of the epoch with the best validation macro-F1."""
    rng = np.random.default_rng(seed)
    x, y = fit
    network = init_network(x, config, rng)
    params = [*network.weights, *network.biases]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    sample_weight = class_weights(y, config.class_weight_power)[y]
    best: tuple[float, int, list[np.ndarray]] = (-1.0, 0, [p.copy() for p in params])
    step = 0
    for epoch in range(config.max_epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // config.batch_size)):
            current = _network(network, params)
            grads = gradients(current, x[batch], y[batch], sample_weight[batch])
            step += 1
            for i, (param, grad) in enumerate(zip(params, grads)):
                if i < len(network.weights):
                    grad = grad + config.weight_decay * param
                moments[i] = 0.9 * moments[i] + 0.1 * grad
                squares[i] = 0.999 * squares[i] + 0.001 * grad**2
                corrected = moments[i] / (1 - 0.9**step)
                param -= config.learning_rate * corrected / (np.sqrt(squares[i] / (1 - 0.999**step)) + 1e-8)
        score = macro_f1(val[1], _network(network, params).probabilities(val[0]).argmax(axis=1))
        if score > best[0]:
            best = (score, epoch + 1, [p.copy() for p in params])
        elif epoch + 1 - best[1] >= config.patience:
            break
    return _network(network, best[2]), {
        "val_macro_f1": best[0],
        "best_epoch": best[1],
        "epochs_run": epoch + 1,
    }


def _network(template: Network, params: Sequence[np.ndarray]) -> Network:
    layers = len(template.weights)
    return Network(template.mean, template.scale, tuple(params[:layers]), tuple(params[layers:]))


# ---------------------------------------------------------------------------------------------- report


def evaluate(network: Network | Ensemble, x: np.ndarray, y: np.ndarray, majority: int) -> dict[str, object]:
    predicted = network.probabilities(x).argmax(axis=1)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(confusion, (y, predicted), 1)
    return {
        "macro_f1": round(macro_f1(y, predicted), 4),
        "per_class_f1": {label: round(score, 4) for label, score in per_class_f1(y, predicted).items()},
        "accuracy": round(float(np.mean(predicted == y)), 4),
        "majority_baseline": {
            "label": LABELS[majority],
            "macro_f1": round(macro_f1(y, np.full_like(y, majority)), 4),
            "accuracy": round(float(np.mean(y == majority)), 4),
        },
        "confusion_matrix": {"rows_true_cols_predicted": list(LABELS), "counts": confusion.tolist()},
    }


def train_ensemble(
    pairs: Sequence[Pair], features: FeatureTable, config: TrainConfig, seed: int
) -> tuple[Ensemble, list[dict[str, float]]]:
    """`config.members` networks; member m stops early on its own seeded story split of `pairs`."""
    members, history = [], []
    for member in range(config.members):
        fit_pairs, stop_pairs = story_split(pairs, 0.15, seed + 1 + member)
        network, record = train(features.rows(fit_pairs), features.rows(stop_pairs), config, seed + member)
        members.append(network)
        history.append(record)
    return Ensemble(tuple(members)), history


@dataclass
class FeatureTable:
    """Feature rows of every pair, computed once; `rows` picks the rows of a subset."""

    index: dict[Pair, int]
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def build(cls, pairs: Sequence[Pair], embedded: EmbeddedCorpus) -> FeatureTable:
        unique = list(dict.fromkeys(pairs))
        x, y = feature_matrix(unique, embedded)
        return cls({pair: row for row, pair in enumerate(unique)}, x, y)

    def rows(self, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
        picked = [self.index[pair] for pair in pairs]
        return self.x[picked], self.y[picked]


#: Training settings compared by `--select` (repeated story hold-outs inside the training stories).
CANDIDATES: dict[str, TrainConfig] = {
    "single, class weights ^0.5": TrainConfig(class_weight_power=0.5, members=1),
    "single, class weights ^1": TrainConfig(members=1),
    "9 members, hidden 32": TrainConfig(hidden=32),
    "9 members, hidden 64 (shipped)": TrainConfig(),
}


def select(pairs: Sequence[Pair], features: FeatureTable, seed: int, repeats: int = 4) -> dict[str, object]:
    """Mean and spread of macro-F1 of each candidate over `repeats` story hold-outs of `pairs` (20% each)."""
    results: dict[str, object] = {}
    for name, config in CANDIDATES.items():
        scores = []
        for repeat in range(repeats):
            kept, held = story_split(pairs, 0.2, seed + 100 + repeat)
            ensemble, _ = train_ensemble(kept, features, config, seed + 200 + repeat)
            x, y = features.rows(held)
            scores.append(macro_f1(y, ensemble.probabilities(x).argmax(axis=1)))
        results[name] = {
            "macro_f1_mean": round(float(np.mean(scores)), 4),
            "sd": round(float(np.std(scores)), 4),
        }
        print(name, results[name], flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with bodies/stances.jsonl")
    parser.add_argument("--out", type=Path, default=RESOURCES, help="where claim_stance.npz/.metrics.json go")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--test-share", type=float, default=0.2, help="share of related pairs held out")
    parser.add_argument(
        "--hidden", type=int, default=TrainConfig.hidden, help="hidden units; 0 = softmax only"
    )
    parser.add_argument("--members", type=int, default=TrainConfig.members, help="networks in the ensemble")
    parser.add_argument(
        "--select", action="store_true", help="only compare training settings inside the training stories"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = load_corpus(args.data)
    train_pairs, test_pairs = story_split(corpus.pairs, args.test_share, args.seed)
    embedder = get_embedder(Settings())
    embedded = embed_corpus(corpus, embedder)
    embedded_at = time.perf_counter()
    features = FeatureTable.build([*train_pairs, *test_pairs], embedded)
    if args.select:
        select(train_pairs, features, args.seed)
        return 0
    config = TrainConfig(hidden=args.hidden, members=args.members)
    ensemble, history = train_ensemble(train_pairs, features, config, args.seed)
    majority = int(np.bincount(features.rows(train_pairs)[1]).argmax())
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "claim_stance.npz"
    save_ensemble(model_path, ensemble, embedder=embedder.name, dim=embedder.dim)
    metrics = {
        "held_out": evaluate(ensemble, *features.rows(test_pairs), majority),
        "inner_validation": history,
        "splits": {"train": describe(train_pairs), "test": describe(test_pairs)},
        "split_method": "connected stories of related claim-body pairs; cross-split unrelated pairs dropped; "
        "each member stops early on its own 15% story split of the training stories",
        "model": {"kind": "mlp-ensemble", **config.__dict__, "inputs": int(features.x.shape[1])},
        "feature_spec_version": FEATURE_SPEC_VERSION,
        "scalar_features": list(SCALAR_FEATURES),
        "embedder": embedder.name,
        "seed": args.seed,
        "test_share": args.test_share,
        "data": str(args.data),
        "date": datetime.now(UTC).date().isoformat(),
        "seconds": {
            "embedding": round(embedded_at - started, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "model_bytes": model_path.stat().st_size,
    }
    (args.out / "claim_stance.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({key: metrics[key] for key in ("held_out", "seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
