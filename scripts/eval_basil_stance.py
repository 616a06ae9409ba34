"""Measure the local document stance (compare.analysis.sentiment) against BASIL's author_feeling_main_event.

    python scripts/eval_basil_stance.py [--data /work/shared/corpus/basil] [--seed 13]

Writes compare/resources/basil_stance.metrics.json and prints the headline.

Per article: the sentences are `compare.chunking.sentence_spans` over the text; the target is the event's
`main_event` from events.jsonl (the annotators' description of the event the three articles cover); the weight
of a sentence is its cosine with the target under the offline MiniLM embedder (`get_embedder(Settings())`);
the prediction is `stance_toward(target, sentences, weights, params)`.

Label mapping (BASIL -> ours): pos -> positive, neg -> negative, neu -> neutral. Our two other labels have no
BASIL counterpart and are scored as `neutral`: `mixed` (both tones, no net lean) and `not_addressed` (nothing
relevant, no stance expressed). Macro-F1 is over the three BASIL classes; the confusion matrices keep our five
labels as columns so the collapsing stays visible.

Split: by event, fixed seed. Events are put in two strata (some article not neutral / all three neutral),
shuffled with the seed within each stratum, and half of each stratum (rounded) is held out; the other events
are the development set. The thresholds (`StanceParams`) are chosen on the development events only, by
macro-F1 over a small fixed grid (ties: higher accuracy, then the earlier grid point, defaults first); the
held-out events are scored once. Whether tuning is worth it at all is also decided on the development events
alone: a leave-one-event-out cross-validation inside them compares "tune on the other events" with the
untuned original thresholds, and the winner is what ships (`DEFAULT_PARAMS` in sentiment.py must equal it;
`shipped_params_match_chosen` says whether it does). The headline is the held-out figure of the shipped
parameters. As a second, less noisy estimate over all 45 articles, a 5-fold cross-validation by event scores
both the original thresholds and grid tuning nested in each fold.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare.analysis.sentiment import (  # noqa: E402
    DEFAULT_PARAMS,
    METHOD,
    StanceParams,
    stance_toward,
)
from compare.chunking import sentence_spans  # noqa: E402
from compare.embedding import Embedder, get_embedder  # noqa: E402
from compare.settings import Settings  # noqa: E402
from compare.types import Stance  # noqa: E402

DEFAULT_DATA = Path("/work/shared/corpus/basil")
RESOURCES = ROOT / "compare" / "resources"
LABEL_MAP = {"pos": "positive", "neu": "neutral", "neg": "negative"}
CLASSES = ("positive", "neutral", "negative")
PREDICTED = ("positive", "neutral", "negative", "mixed", "not_addressed")
SCORED_AS = {"mixed": "neutral", "not_addressed": "neutral"}
#: The method as first shipped (StanceParams' field defaults), kept as a reference point.
ORIGINAL = StanceParams()
#: The grid searched on the development events; each axis lists the original value first.
GRID: dict[str, tuple[float, ...]] = {
    "leaning": (0.12, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3),
    "mixed_share": (0.3, 0.4, 1.01),
    "relative_floor": (0.0, 0.5, 0.7, 0.85),
    "quote_weight": (1.0, 0.5, 0.0),
}


@dataclass(frozen=True)
class Article:
    id: str
    event_id: str
    source: str
    target: str
    label: str  # ours: positive / neutral / negative
    sentences: tuple[str, ...]
    weights: tuple[float, ...]


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        yield from (json.loads(line) for line in handle if line.strip())


def load_articles(data: Path, embedder: Embedder) -> list[Article]:
    """Every article with its sentences and their relevance to the event's main_event."""
    targets = {row["event_id"]: row["main_event"] for row in _jsonl(data / "events.jsonl")}
    rows = list(_jsonl(data / "articles.jsonl"))
    sentences = [tuple(row["text"][a:b] for a, b in sentence_spans(row["text"])) for row in rows]
    target_list = sorted(set(targets.values()))
    target_vectors = dict(zip(target_list, embedder.embed(target_list), strict=True))
    matrix = embedder.embed([s for group in sentences for s in group])
    articles, row_index = [], 0
    for row, group in zip(rows, sentences, strict=True):
        vectors = matrix[row_index : row_index + len(group)]
        row_index += len(group)
        target = targets[row["event_id"]]
        articles.append(
            Article(
                id=row["id"],
                event_id=row["event_id"],
                source=row["source"],
                target=target,
                label=LABEL_MAP[row["article_annotations"]["author_feeling_main_event"]],
                sentences=group,
                weights=tuple(float(x) for x in vectors @ target_vectors[target]),
            )
        )
    return articles


# ---------------------------------------------------------------------------------------------- splits


def _strata(articles: Sequence[Article]) -> list[list[str]]:
    """Event ids in two strata, each sorted: events with a non-neutral article, then all-neutral events."""
    leaning = sorted({a.event_id for a in articles if a.label != "neutral"})
    calm = sorted({a.event_id for a in articles} - set(leaning))
    return [leaning, calm]


def event_split(articles: Sequence[Article], seed: int) -> tuple[list[str], list[str]]:
    """(development events, held-out events): half of each stratum held out, seeded."""
    rng = np.random.default_rng(seed)
    dev, test = [], []
    for stratum in _strata(articles):
        order = [stratum[i] for i in rng.permutation(len(stratum))]
        cut = round(len(order) / 2)
        test.extend(order[:cut])
        dev.extend(order[cut:])
    return sorted(dev), sorted(test)


def event_folds(articles: Sequence[Article], folds: int, seed: int) -> list[list[str]]:
    """Events dealt round-robin into folds, stratum by stratum, after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    order = [event for stratum in _strata(articles) for event in rng.permutation(stratum).tolist()]
    return [sorted(order[i::folds]) for i in range(folds)]


def _of(articles: Sequence[Article], events: Iterable[str]) -> list[Article]:
    wanted = set(events)
    return [a for a in articles if a.event_id in wanted]


# ---------------------------------------------------------------------------------------------- scoring


def predict(articles: Sequence[Article], params: StanceParams) -> list[Stance]:
    return [stance_toward(a.target, a.sentences, a.weights, params) for a in articles]


def scored_label(label: str) -> str:
    return SCORED_AS.get(label, label)


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    """Macro-F1 and accuracy over the three BASIL classes; confusion rows = truth, columns = our five labels."""
    collapsed = [scored_label(label) for label in predicted]
    per_class = {}
    for label in CLASSES:
        tp = sum(t == p == label for t, p in zip(truth, collapsed, strict=True))
        denominator = collapsed.count(label) + list(truth).count(label)
        per_class[label] = round(2 * tp / denominator, 4) if denominator else 0.0
    confusion = [
        [sum(t == row and p == col for t, p in zip(truth, predicted, strict=True)) for col in PREDICTED]
        for row in CLASSES
    ]
    return {
        "n": len(truth),
        "macro_f1": round(float(np.mean(list(per_class.values()))), 4),
        "accuracy": round(sum(t == p for t, p in zip(truth, collapsed, strict=True)) / max(1, len(truth)), 4),
        "per_class_f1": per_class,
        "confusion_matrix": {
            "rows_true": list(CLASSES),
            "cols_predicted": list(PREDICTED),
            "counts": confusion,
        },
    }


def evaluate(articles: Sequence[Article], params: StanceParams) -> dict[str, object]:
    stances = predict(articles, params)
    result = scores([a.label for a in articles], [s.label for s in stances])
    confident = [(a, s) for a, s in zip(articles, stances, strict=True) if not s.low_confidence]
    result["confident_only"] = {
        "coverage": round(len(confident) / max(1, len(articles)), 4),
        "accuracy": round(sum(a.label == scored_label(s.label) for a, s in confident) / len(confident), 4)
        if confident
        else None,
    }
    return result


def majority_baseline(dev: Sequence[Article], test: Sequence[Article]) -> dict[str, object]:
    """Always answer the development set's most frequent label."""
    label = Counter(a.label for a in dev).most_common(1)[0][0]
    return {"label": label, **scores([a.label for a in test], [label] * len(test))}


def grid() -> list[StanceParams]:
    names = list(GRID)
    return [
        replace(ORIGINAL, **dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
        for values in itertools.product(*GRID.values())
    ]


def tune(dev: Sequence[Article]) -> tuple[StanceParams, dict[str, object]]:
    """The grid point with the best development macro-F1 (ties: accuracy, then grid order)."""
    truth = [a.label for a in dev]
    best: tuple[float, float] = (-1.0, -1.0)
    chosen = ORIGINAL
    for params in grid():
        result = scores(truth, [s.label for s in predict(dev, params)])
        key = (float(result["macro_f1"]), float(result["accuracy"]))  # type: ignore[arg-type]
        if key > best:
            best, chosen = key, params
    return chosen, {"macro_f1": best[0], "accuracy": best[1], "grid_points": len(grid())}


def choose_params(dev: Sequence[Article]) -> tuple[StanceParams, dict[str, object]]:
    """Tuned or original thresholds, whichever scores the higher macro-F1 in a leave-one-event-out
    cross-validation inside the development events (tuning nested in each fold)."""
    truth: list[str] = []
    tuned: list[str] = []
    original: list[str] = []
    for event in sorted({a.event_id for a in dev}):
        inner_test = [a for a in dev if a.event_id == event]
        params, _ = tune([a for a in dev if a.event_id != event])
        truth += [a.label for a in inner_test]
        tuned += [s.label for s in predict(inner_test, params)]
        original += [s.label for s in predict(inner_test, ORIGINAL)]
    inner = {"tuned": scores(truth, tuned), "original_method": scores(truth, original)}
    tuned_wins = inner["tuned"]["macro_f1"] > inner["original_method"]["macro_f1"]  # type: ignore[operator]
    params = tune(dev)[0] if tuned_wins else ORIGINAL
    short = {name: {k: v[k] for k in ("macro_f1", "accuracy")} for name, v in inner.items()}
    return params, {
        "leave_one_event_out_in_development": short,
        "chosen": "tuned" if tuned_wins else "original",
    }


def cross_validate(articles: Sequence[Article], folds: int, seed: int) -> dict[str, object]:
    """Nested: each fold's thresholds are tuned on the other folds; predictions pooled over all articles."""
    truth: list[str] = []
    tuned: list[str] = []
    original: list[str] = []
    majority: list[str] = []
    chosen = []
    for events in event_folds(articles, folds, seed):
        test = _of(articles, events)
        dev = [a for a in articles if a.event_id not in set(events)]
        params, _ = tune(dev)
        chosen.append(_changed(params))
        truth += [a.label for a in test]
        tuned += [s.label for s in predict(test, params)]
        original += [s.label for s in predict(test, ORIGINAL)]
        majority += [Counter(a.label for a in dev).most_common(1)[0][0]] * len(test)
    return {
        "folds": folds,
        "tuned": scores(truth, tuned),
        "original_method": scores(truth, original),
        "majority_baseline": scores(truth, majority),
        "params_per_fold": chosen,
    }


def _changed(params: StanceParams) -> dict[str, float]:
    return {key: value for key, value in asdict(params).items() if key in GRID}


# ---------------------------------------------------------------------------------------------- report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with articles/events.jsonl")
    parser.add_argument("--out", type=Path, default=RESOURCES / "basil_stance.metrics.json")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    embedder = get_embedder(Settings())
    articles = load_articles(args.data, embedder)
    dev_events, test_events = event_split(articles, args.seed)
    dev, test = _of(articles, dev_events), _of(articles, test_events)
    tuned, dev_best = tune(dev)
    params, selection = choose_params(dev)
    metrics = {
        "task": "document stance toward the event vs BASIL author_feeling_main_event",
        "headline": "held_out.shipped",
        "held_out": {
            "shipped": evaluate(test, DEFAULT_PARAMS),
            "grid_tuned_on_development": evaluate(test, tuned),
            "original_method": evaluate(test, ORIGINAL),
            "majority_baseline": majority_baseline(dev, test),
        },
        "development": {
            "grid_tuned": evaluate(dev, tuned),
            "original_method": evaluate(dev, ORIGINAL),
            "search": {**dev_best, "best": _changed(tuned)},
            "selection": selection,
        },
        "chosen_params": asdict(params),
        "shipped_params_match_chosen": params == DEFAULT_PARAMS,
        "grid": {key: list(values) for key, values in GRID.items()},
        "cross_validation": cross_validate(articles, args.folds, args.seed),
        "label_mapping": {"basil_to_ours": LABEL_MAP, "scored_as": SCORED_AS},
        "target": "events.jsonl main_event",
        "weights": "cosine of each sentence with the target (offline MiniLM)",
        "split": {
            "method": "by event; strata (any non-neutral article / all neutral), half of each held out, seeded",
            "seed": args.seed,
            "development_events": dev_events,
            "held_out_events": test_events,
            "labels": {
                "development": dict(Counter(a.label for a in dev)),
                "held_out": dict(Counter(a.label for a in test)),
            },
        },
        "method": METHOD,
        "embedder": embedder.name,
        "data": str(args.data),
        "date": datetime.now(UTC).date().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(_headline(metrics), indent=2))
    return 0


def _headline(metrics: dict) -> dict[str, object]:
    held, cv = metrics["held_out"], metrics["cross_validation"]
    short = {name: {k: v[k] for k in ("n", "macro_f1", "accuracy")} for name, v in held.items()}
    return {
        "held_out": short,
        "held_out_confusion_shipped": held["shipped"]["confusion_matrix"],
        "held_out_confident_only_shipped": held["shipped"]["confident_only"],
        "cross_validation": {
            name: {k: cv[name][k] for k in ("n", "macro_f1", "accuracy")}
            for name in ("tuned", "original_method", "majority_baseline")
        },
        "selection": metrics["development"]["selection"],
        "chosen_params": metrics["chosen_params"],
        "shipped_params_match_chosen": metrics["shipped_params_match_chosen"],
    }


if __name__ == "__main__":
    raise SystemExit(main())
