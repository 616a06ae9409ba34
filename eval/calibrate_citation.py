"""Calibrate the citation-support threshold (compare.metrics.CITATION_SUPPORT_THRESHOLD).

    .venv/bin/python eval/calibrate_citation.py [CORPUS_DIR] [PAIRS_PER_CLASS]

Question the metric asks: is this quote about the claim it is attached to? FNC-1 labels exactly that relation
between a claim (headline) and an article body: related (agree, disagree, discuss) or unrelated. For each pair
we take the body sentence closest to the headline (what a tool would quote for it) and its cosine with the
headline under the local embedder; the threshold is the one that best separates related from unrelated pairs
(highest balanced accuracy). A deterministic sample (by hash) of PAIRS_PER_CLASS pairs of each class keeps the
run under a minute. Writes eval/calibration/citation_support.json.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from compare import __version__
from compare.chunking import sentence_spans
from compare.embedding import get_embedder
from compare.settings import Settings

EVAL = Path(__file__).resolve().parent


def _key(row: dict[str, str]) -> str:
    return hashlib.sha256(f"{row['headline']}|{row['body_id']}".encode()).hexdigest()


def sample(corpus: Path, per_class: int) -> tuple[list[dict[str, str]], dict[str, str]]:
    bodies = {}
    for line in (corpus / "fnc1" / "bodies.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        bodies[str(record["body_id"])] = record["text"]
    rows = [json.loads(line) for line in (corpus / "fnc1" / "stances.jsonl").read_text().splitlines()]
    for row in rows:
        row["body_id"] = str(row["body_id"])
    related = sorted((r for r in rows if r["stance"] != "unrelated"), key=_key)[:per_class]
    unrelated = sorted((r for r in rows if r["stance"] == "unrelated"), key=_key)[:per_class]
    return related + unrelated, bodies


def best_sentence_cosines(pairs: list[dict[str, str]], bodies: dict[str, str]) -> np.ndarray:
    embedder = get_embedder(Settings())
    body_ids = sorted({p["body_id"] for p in pairs})
    sentence_vectors = {}
    for body_id in body_ids:
        text = bodies[body_id]
        sentences = [text[s:e] for s, e in sentence_spans(text) if len(text[s:e].split()) >= 4] or [text]
        sentence_vectors[body_id] = embedder.embed(sentences[:60])
    headlines = embedder.embed([p["headline"] for p in pairs])
    return np.array([float((sentence_vectors[p["body_id"]] @ h).max()) for p, h in zip(pairs, headlines)])


def best_threshold(cosines: np.ndarray, related: np.ndarray) -> dict[str, float]:
    best: dict[str, float] = {}
    for threshold in np.round(np.arange(0.10, 0.90, 0.01), 2):
        predicted = cosines >= threshold
        tpr = float((predicted & related).sum() / related.sum())
        fpr = float((predicted & ~related).sum() / (~related).sum())
        balanced = (tpr + 1 - fpr) / 2
        if balanced > best.get("balanced_accuracy", -1):
            best = {
                "threshold": float(threshold),
                "balanced_accuracy": round(balanced, 4),
                "true_positive_rate": round(tpr, 4),
                "false_positive_rate": round(fpr, 4),
            }
    return best


def main(corpus: Path, per_class: int) -> None:
    started = time.perf_counter()
    pairs, bodies = sample(corpus, per_class)
    cosines = best_sentence_cosines(pairs, bodies)
    related = np.array([p["stance"] != "unrelated" for p in pairs])
    result = {
        "method": "max cosine between FNC-1 headline and body sentences; related = agree/disagree/discuss",
        "embedder": get_embedder(Settings()).name,
        "pairs_per_class": per_class,
        "related_mean_cosine": round(float(cosines[related].mean()), 4),
        "unrelated_mean_cosine": round(float(cosines[~related].mean()), 4),
        **best_threshold(cosines, related),
        "package_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = EVAL / "calibration" / "citation_support.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    corpus_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else EVAL.parent.parent / "shared" / "corpus"
    main(corpus_dir, int(sys.argv[2]) if len(sys.argv) > 2 else 250)
