"""Benchmark the claim-stance cross-encoder: claim-passage pairs per second on this machine.

    .venv/bin/python bench/stance.py [--pairs 400] [--repeats 3]

Pairs are FNC-1 development claims with the passages `passage_spans` selects from their bodies (what the
product reads). Baseline, measured in the same run: the offline embedder encoding the same passages (one
MiniLM-L6 forward pass each, the cost every retrieved text already pays), so the ratio says what a judgement
costs next to an embedding. Prints JSON; target >= 50 pairs/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compare.analysis.stance_model import shared_model  # noqa: E402
from compare.analysis.stance_passage import passage_spans  # noqa: E402
from compare.embedding import default_threads, get_embedder  # noqa: E402
from compare.settings import Settings  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "fnc1"
TARGET_PAIRS_PER_S = 50.0


def load_pairs(count: int) -> list[tuple[str, str]]:
    bodies = {}
    for line in (CORPUS / "bodies.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bodies[row["body_id"]] = row["text"]
    rows = [json.loads(line) for line in (CORPUS / "stances.jsonl").read_text(encoding="utf-8").splitlines()]
    related = [r for r in rows if r["stance"] != "unrelated"][:count]
    return [(r["headline"], passage_spans(r["headline"], bodies[r["body_id"]]).text) for r in related]


def rate(run: Callable[[], object], count: int, repeats: int) -> float:
    """Items per second: the median of `repeats` timed runs after one warm-up."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return count / sorted(times)[len(times) // 2]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    pairs = load_pairs(args.pairs)
    model = shared_model()
    settings = Settings()
    embedder = get_embedder(settings)
    passages = [passage for _, passage in pairs]
    stance = rate(lambda: model.probabilities(pairs), len(pairs), args.repeats)
    embed = rate(lambda: embedder.embed(passages), len(pairs), args.repeats)
    tokens = [len(e.ids) for e in model.tokenizer.encode_batch(pairs)]
    print(
        json.dumps(
            {
                "machine": {"cpu": platform.processor() or platform.machine(), "threads": default_threads()},
                "model": model.method,
                "pairs": len(pairs),
                "mean_pair_tokens": round(sum(tokens) / len(tokens), 1),
                "stance_pairs_per_s": round(stance, 1),
                "baseline_embedder_passages_per_s": round(embed, 1),
                "ratio_to_embedder": round(stance / embed, 3),
                "target_pairs_per_s": TARGET_PAIRS_PER_S,
                "meets_target": stance >= TARGET_PAIRS_PER_S,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
