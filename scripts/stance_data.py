"""Step 1 of `make stance-model`: FNC-1 pairs -> (claim, passage, label) JSONL for the cross-encoder.

    python scripts/stance_data.py [--shared ../shared/corpus] [--out build/stance]

Writes `train.jsonl` and `val.jsonl` (from `fnc1_train`, split by story so validation stories are unseen) and
`test.jsonl` (the story-disjoint `fnc1` development subset: measured once, never tuned on), plus
`data.json` with the SHA-256 of every input file and the passage spec. Passages come from
`compare.analysis.stance_passage.passage_spans`, the function inference uses. Runs in the project venv (no torch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from claim_negation import MIRROR, negate  # noqa: E402

from compare.analysis.stance_model import LABELS  # noqa: E402
from compare.analysis.stance_passage import (  # noqa: E402
    PASSAGE_SPEC,
    PASSAGE_SPEC_NO_BONUS,
    REFUTE_BONUS,
    passage_spans,
)

#: Share of fnc1_train's related pairs (whole stories) kept aside for early stopping.
VAL_SHARE = 0.12
#: Share of `unrelated` training pairs kept: FNC-1's unrelated pairs are other stories' headlines, easy to
#: tell apart; keeping all of them would spend most of the training time on the easiest class.
UNRELATED_KEEP = 0.2
#: With --negate: share of `discuss` training pairs that also get a negated copy (agree and disagree pairs
#: all do), so that negated claims appear under every label and mean nothing by themselves.
NEGATED_DISCUSS_KEEP = 0.4


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


def negated_pairs(pairs: Sequence[Pair], rng: random.Random) -> list[Pair]:
    """A negated copy of every agree/disagree pair and of a share of discuss pairs, its label mirrored."""
    out = []
    discuss = LABELS.index("discuss")
    for pair in pairs:
        label = LABELS[pair.label]
        if label == "unrelated" or (pair.label == discuss and rng.random() >= NEGATED_DISCUSS_KEEP):
            continue
        if (claim := negate(pair.claim)) is not None:
            out.append(Pair(claim, pair.body_id, LABELS.index(MIRROR[label])))
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(pairs: list[Pair], bodies: dict[int, str], prefix: str, bonus: float) -> list[dict[str, object]]:
    out = []
    for pair in pairs:
        passage = passage_spans(pair.claim, bodies[pair.body_id], refute_bonus=bonus)
        out.append(
            {
                "claim": pair.claim,
                "passage": passage.text,
                "label": pair.label,
                "body": f"{prefix}{pair.body_id}",
            }
        )
    return out


def write(path: Path, items: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "stance")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--refute-bonus",
        type=float,
        default=REFUTE_BONUS,
        help="0 gives the passages of the first training stage (spec v1)",
    )
    parser.add_argument(
        "--negate",
        action="store_true",
        help="add training pairs with the claim negated and the label mirrored (scripts/claim_negation.py)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train_corpus = load_corpus(args.shared / "fnc1_train")
    test_corpus = load_corpus(args.shared / "fnc1")
    kept, val = story_split(train_corpus.pairs, VAL_SHARE, args.seed)
    rng = random.Random(args.seed)
    unrelated = LABELS.index("unrelated")
    train = [p for p in kept if p.label != unrelated or rng.random() < UNRELATED_KEEP]
    if args.negate:
        train += negated_pairs(train, rng)
    splits = {
        "train": rows(train, train_corpus.bodies, "train-", args.refute_bonus),
        "val": rows(val, train_corpus.bodies, "train-", args.refute_bonus),
        "test": rows(test_corpus.pairs, test_corpus.bodies, "test-", args.refute_bonus),
    }
    for name, items in splits.items():
        write(args.out / f"{name}.jsonl", items)
    # The validation stories in FNC-1's own format: eval/build_fnc1_judgements.py makes a tuning set of
    # multi-outlet cases from them (rules are tuned there, never on the fnc1 subset they are measured on).
    fnc1_val = args.out / "fnc1_val"
    fnc1_val.mkdir(exist_ok=True)
    val_bodies = sorted({p.body_id for p in val})
    write(fnc1_val / "bodies.jsonl", [{"body_id": b, "text": train_corpus.bodies[b]} for b in val_bodies])
    write(
        fnc1_val / "stances.jsonl",
        [{"headline": p.claim, "body_id": p.body_id, "stance": LABELS[p.label]} for p in val],
    )
    inputs = [args.shared / d / f for d in ("fnc1_train", "fnc1") for f in ("bodies.jsonl", "stances.jsonl")]
    info = {
        "passage_spec": PASSAGE_SPEC if args.refute_bonus == REFUTE_BONUS else PASSAGE_SPEC_NO_BONUS,
        "refute_bonus": args.refute_bonus,
        "seed": args.seed,
        "val_share": VAL_SHARE,
        "unrelated_keep": UNRELATED_KEEP,
        "negated": {"discuss_keep": NEGATED_DISCUSS_KEEP} if args.negate else None,
        "inputs": {str(p.relative_to(args.shared)): sha256(p) for p in inputs},
        "counts": {
            name: dict(Counter(LABELS[int(str(r["label"]))] for r in items)) for name, items in splits.items()
        },
    }
    (args.out / "data.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(info["counts"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
