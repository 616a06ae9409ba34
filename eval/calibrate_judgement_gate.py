"""Calibrate the judgement gate's contest thresholds (compare.analysis.judgement_gate.CONTEST_AT).

    .venv/bin/python eval/calibrate_judgement_gate.py [TUNING_DIR] [TEST_DIR]

Question the gate asks: a model labelled a quote's source as backing (disputing, reporting) a claim; when the
local stance model reads that quote otherwise, how often is the label in fact right? FNC-1 labels exactly that
relation between a claim (headline) and an article body. For every related pair (agree, disagree, discuss) the
"quote" is the body sentence sharing most content words with the claim (what a model would quote for it), read
by the gate itself (`QuoteReader`: the sentence with one either side). For each claimed label and each other
reading, the threshold is the lowest confidence of a sure reading at which at most MAX_FALSE of the quotes
whose true label is the claimed one read so (a false contest), provided at least MIN_TRUE of the quotes whose
true label is that reading do (a contest that finds something); pairs with no such threshold never contest.

Thresholds are chosen on the validation stories of the stance model's training split (TUNING_DIR, default
build/stance_v2/fnc1_val, written by scripts/stance_data.py; the model never trained on them) and measured on
the story-disjoint fnc1 subset (TEST_DIR, default ../shared/corpus/fnc1). Writes
eval/calibration/judgement_gate.json.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compare import __version__
from compare.analysis.judgement_gate import ACCEPTED, CONTEXT_SENTENCES, Claimed, QuoteReader
from compare.analysis.lexicon import content_stems, words
from compare.analysis.quotes import verify_quote
from compare.analysis.stance_model import shared_model
from compare.analysis.stance_passage import claim_terms
from compare.chunking import sentence_spans
from compare.types import POSITION_OF_STANCE, Document

EVAL = Path(__file__).resolve().parent
REPO = EVAL.parent
MAX_FALSE = 0.03
MIN_TRUE = 0.05
#: The true labels a claimed label fits ("states": the source backs or reports the claim).
FITS: dict[Claimed, tuple[str, ...]] = {
    "backs": ("backs",),
    "disputes": ("disputes",),
    "reports": ("reports",),
    "states": ("backs", "reports"),
}
READINGS = ("backs", "disputes", "reports", "not_addressed")


def load_pairs(corpus: Path) -> list[dict[str, Any]]:
    bodies = {}
    for line in (corpus / "bodies.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        bodies[str(record["body_id"])] = record["text"]
    rows = [json.loads(line) for line in (corpus / "stances.jsonl").read_text(encoding="utf-8").splitlines()]
    return [
        {"claim": r["headline"], "body_id": str(r["body_id"]), "truth": POSITION_OF_STANCE[r["stance"]],
         "text": bodies[str(r["body_id"])]}
        for r in rows
        if r["stance"] != "unrelated" and str(r["body_id"]) in bodies
    ]  # fmt: skip


def quote_sentence(claim: str, text: str) -> tuple[int, int] | None:
    """The sentence sharing most content words with the claim (ties: the earliest)."""
    spans = sentence_spans(text)
    if not spans:
        return None
    terms = claim_terms(claim)
    return max(spans, key=lambda s: (len(terms & frozenset(content_stems(words(text[s[0] : s[1]])))), -s[0]))


def read_pairs(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pair's quote read by the gate's reader: the reading, its confidence, and whether it is sure."""
    documents = {p["body_id"]: Document(id=p["body_id"], source="fnc1", text=p["text"]) for p in pairs}
    reader = QuoteReader(shared_model(), documents)
    readings = []
    for pair in pairs:
        span = quote_sentence(pair["claim"], pair["text"])
        if span is None:
            continue
        doc = documents[pair["body_id"]]
        quote = verify_quote(doc.text[span[0] : span[1]], doc, hint_start=span[0])
        judged = reader.read(pair["claim"], quote)
        if judged is None:
            continue
        readings.append({"truth": pair["truth"], "reading": POSITION_OF_STANCE[judged.label],
                         "confidence": judged.confidence, "sure": judged.sure})  # fmt: skip
    return readings


def rate(readings: Sequence[dict[str, Any]], truths: Sequence[str], reading: str, at: float) -> float | None:
    """Of the quotes whose true label is in `truths`, the share read surely as `reading` at >= `at`."""
    pool = [r for r in readings if r["truth"] in truths]
    hits = [r for r in pool if r["sure"] and r["reading"] == reading and r["confidence"] >= at]
    return round(len(hits) / len(pool), 4) if pool else None


def choose(readings: Sequence[dict[str, Any]], claimed: Claimed, reading: str) -> float | None:
    """The lowest threshold with few false contests and some true ones; None when there is none."""
    for step in range(100):
        at = step / 100
        false = rate(readings, FITS[claimed], reading, at)
        true = rate(readings, (reading,), reading, at) if reading != "not_addressed" else 1.0
        if false is not None and false <= MAX_FALSE and (true or 0.0) >= MIN_TRUE:
            return at
    return None


def figures(readings: Sequence[dict[str, Any]], claimed: Claimed, reading: str, at: float) -> dict[str, Any]:
    true = rate(readings, (reading,), reading, at) if reading != "not_addressed" else None
    return {"false_contest_rate": rate(readings, FITS[claimed], reading, at), "true_contest_rate": true}


def confirm_rates(readings: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per claimed label and true label: the share of quotes the gate confirms."""
    rates: dict[str, dict[str, float | None]] = {}
    for claimed in FITS:
        rates[claimed] = {}
        for truth in ("backs", "disputes", "reports"):
            pool = [r for r in readings if r["truth"] == truth]
            hits = [r for r in pool if r["sure"] and r["reading"] in ACCEPTED[claimed]]
            rates[claimed][truth] = round(len(hits) / len(pool), 4) if pool else None
    return rates


def main(tuning: Path, test: Path) -> None:
    started = time.perf_counter()
    tuned, measured = read_pairs(load_pairs(tuning)), read_pairs(load_pairs(test))
    pairs: dict[str, Any] = {}
    for claimed in FITS:
        for reading in (r for r in READINGS if r not in ACCEPTED[claimed]):
            at = choose(tuned, claimed, reading)
            pairs[f"{claimed}->{reading}"] = {
                "threshold": at,
                "tuning": figures(tuned, claimed, reading, at) if at is not None else None,
                "test": figures(measured, claimed, reading, at) if at is not None else None,
            }
    result = {
        "method": "FNC-1 related pairs; quote = the body sentence sharing most claim words, read with "
        f"{CONTEXT_SENTENCES} sentence(s) either side; threshold = lowest confidence of a sure reading with "
        f"false contests <= {MAX_FALSE} and true contests >= {MIN_TRUE} on the tuning stories",
        "model": shared_model().method,
        "tuning": {"path": _shown(tuning), "quotes": len(tuned), "truths": _counts(tuned)},
        "test": {"path": _shown(test), "quotes": len(measured), "truths": _counts(measured)},
        "pairs": pairs,
        "confirmed_test": confirm_rates(measured),
        "package_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = EVAL / "calibration" / "judgement_gate.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


def _counts(readings: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {
        truth: sum(1 for r in readings if r["truth"] == truth) for truth in ("backs", "disputes", "reports")
    }


def _shown(path: Path) -> str:
    resolved = path.resolve()
    for root, name in ((REPO, ""), (REPO.parent / "shared", "../shared/")):
        if resolved.is_relative_to(root):
            return name + str(resolved.relative_to(root))
    return str(path)


if __name__ == "__main__":
    tuning_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "build" / "stance_v2" / "fnc1_val"
    test_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "shared" / "corpus" / "fnc1"
    main(tuning_dir, test_dir)
