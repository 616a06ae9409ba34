"""Build the `fnc1_judgements` eval dataset: multi-outlet cases with known positions, from FNC-1.

    .venv/bin/python eval/build_fnc1_judgements.py [FNC1_DIR] [--max-cases N]

One case per FNC-1 headline (the claim, asked as the question's target). Its corpus is a handful of synthetic
outlets, each holding FNC-1 bodies whose pair with that headline is labelled: one that backs it (agree), one
that disputes it (disagree), one that reports it (discuss), one that ignores it (a body of another story,
labelled unrelated), where possible one that changes its position between two dates (two bodies with
different labels) and one that keeps it (two bodies with the same label). The expected positions, differences,
agreements, shifts and omissions follow from the labels; see eval/README.md ("fnc1_judgements").

Reads ../shared/corpus/fnc1 (the story-disjoint development subset: the claim-stance model is trained on
fnc1_train), writes eval/data/fnc1_judgements/articles.jsonl and eval/datasets/fnc1_judgements.yaml.
Deterministic: choices come from a seeded generator over sorted inputs. Every body is used at most once in
the whole dataset, and never beside a near-copy of itself (word 5-shingle Jaccard >= 0.3): the store marks
copies as duplicates of the first one stored, which would send a case's reading to another case's document.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

EVAL = Path(__file__).resolve().parent
NAME = "fnc1_judgements"
SEED = 20240105
MAX_CASES = 60
#: Bodies outside this range are skipped: the shortest carry no position, the longest would make the
#: committed corpus large (cases are capped instead of texts cut).
MIN_CHARS, MAX_CHARS = 300, 6000
NEAR_COPY_JACCARD = 0.3
BEFORE, SINGLE, AFTER = "2024-01-05", "2024-02-01", "2024-03-05"
POSITION = {"agree": "backs", "disagree": "disputes", "discuss": "reports", "unrelated": "not_addressed"}
RELATED = ("agree", "disagree", "discuss")
OUTLET_NAMES = (
    "Harbor Gazette",
    "Midland Courier",
    "Northfield Herald",
    "Riverside Ledger",
    "Summit Daily",
    "Westbrook Tribune",
    "Lakeshore Post",
    "Valley Observer",
)
_WORD = re.compile(r"\w+")


@dataclass
class Fnc1:
    bodies: dict[int, str]
    labels: dict[str, dict[int, str]]  # headline -> body id -> stance


@dataclass
class Outlet:
    """One synthetic outlet of a case: its role and its (body id, stance, date) documents, oldest first."""

    role: str  # backs | disputes | reports | shifting | steady | ignores
    documents: list[tuple[int, str, str]]
    source: str = ""
    name: str = ""


@dataclass(order=True)
class Plan:
    """Which roles a headline's remaining bodies can fill; `score` ranks plans (higher is richer)."""

    score: float
    shift: tuple[str, str] | None = field(compare=False)
    steady: str | None = field(compare=False)
    singles: tuple[str, ...] = field(compare=False)


# -- reading ------------------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_fnc1(folder: Path) -> Fnc1:
    bodies = {int(r["body_id"]): str(r["text"]) for r in read_jsonl(folder / "bodies.jsonl")}
    labels: dict[str, dict[int, str]] = defaultdict(dict)
    for row in read_jsonl(folder / "stances.jsonl"):
        labels[str(row["headline"])][int(row["body_id"])] = str(row["stance"])
    return Fnc1(bodies, dict(labels))


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return frozenset(tuple(words[i : i + 5]) for i in range(max(1, len(words) - 4)))


def _find(parent: dict[int, int], item: int) -> int:
    while parent[item] != item:
        parent[item] = parent[parent[item]]
        item = parent[item]
    return item


def near_copy_groups(bodies: dict[int, str], threshold: float = NEAR_COPY_JACCARD) -> dict[int, int]:
    """body id -> the smallest body id of its group of near-copies (linked by Jaccard >= threshold)."""
    parent = {body: body for body in bodies}
    shingles = {body: _shingles(text) for body, text in bodies.items()}
    for a, b in combinations(sorted(bodies), 2):
        union = len(shingles[a] | shingles[b])
        if union and len(shingles[a] & shingles[b]) / union >= threshold:
            first, second = sorted((_find(parent, a), _find(parent, b)))
            parent[second] = first
    return {body: _find(parent, body) for body in bodies}


# -- planning one case ---------------------------------------------------------------------------------------

_SHIFTS: tuple[tuple[str, str] | None, ...] = (
    None,
    ("agree", "disagree"),
    ("agree", "discuss"),
    ("disagree", "discuss"),
)


def plan_roles(counts: dict[str, int]) -> Plan | None:
    """The richest set of roles the labelled bodies allow: a backs/disputes difference, a shift (best
    agree<->disagree), a steady outlet, then one outlet per label left (two of one label only when a case
    would otherwise have fewer than three outlets addressing the claim). None when it still has fewer than
    three, or no outlet that takes a side without shifting."""
    best: Plan | None = None
    for shift in _SHIFTS:
        for steady in (None, *RELATED):
            left = dict(counts)
            for label in shift or ():
                left[label] = left.get(label, 0) - 1
            if steady:
                left[steady] = left.get(steady, 0) - 2
            if min(left.values(), default=0) < 0:
                continue
            plan = _scored(shift, steady, _singles(left, 3 - (shift is not None) - (steady is not None)))
            if plan is not None and (best is None or plan > best):
                best = plan
    return best


def _singles(left: dict[str, int], wanted: int) -> tuple[str, ...]:
    singles = [label for label in RELATED if left.get(label, 0) > 0]
    for label in RELATED:
        if len(singles) < wanted and left.get(label, 0) > 1:
            singles.append(label)
    return tuple(sorted(singles, key=RELATED.index))


def _scored(shift: tuple[str, str] | None, steady: str | None, singles: tuple[str, ...]) -> Plan | None:
    sided = {label for label in (*singles, steady) if label in ("agree", "disagree")}
    outlets = len(singles) + (shift is not None) + (steady is not None)
    if not sided or outlets < 3:
        return None
    # disagree bodies are scarce (3 % of the pairs): kept for differences rather than a steady outlet
    steady_score = {None: 0.0, "disagree": 1.0}.get(steady, 2.0)
    score = 5.0 * (sided == {"agree", "disagree"}) + steady_score + 0.5 * outlets
    if shift is not None:
        score += 4.0 if set(shift) == {"agree", "disagree"} else 3.0
    return Plan(score, shift, steady, singles)


# -- choosing the cases --------------------------------------------------------------------------------------


@dataclass
class Builder:
    fnc1: Fnc1
    rng: random.Random
    group: dict[int, int]
    story: dict[str, int]
    used: set[int] = field(default_factory=set)  # near-copy groups already in the dataset
    sided: dict[int, int] = field(default_factory=dict)  # body -> claims it agrees or disagrees with

    def __post_init__(self) -> None:
        for related in self.fnc1.labels.values():
            for body, stance in related.items():
                if stance in ("agree", "disagree"):
                    self.sided[body] = self.sided.get(body, 0) + 1

    def usable(self, body: int) -> bool:
        return body in self.group and self.group[body] not in self.used

    def available(self, headline: str) -> dict[str, list[int]]:
        """Related bodies not used yet, one per group of near-copies (so one case never holds two)."""
        found: dict[str, list[int]] = defaultdict(list)
        groups: set[int] = set()
        for body, stance in sorted(self.fnc1.labels[headline].items()):
            if stance in RELATED and self.usable(body) and self.group[body] not in groups:
                groups.add(self.group[body])
                found[stance].append(body)
        return found

    def take(self, bodies: list[int]) -> int:
        body = self.rng.choice(bodies)
        bodies.remove(body)
        self.used.add(self.group[body])
        return body

    def unrelated_body(self, headline: str) -> int | None:
        """A body labelled unrelated to the headline; of those, one that takes a side on fewest other
        claims, so the scarce agree/disagree bodies stay for other cases."""
        candidates = [
            body
            for body, stance in sorted(self.fnc1.labels[headline].items())
            if stance == "unrelated" and self.usable(body)
        ]
        if not candidates:
            return None
        least = min(self.sided.get(body, 0) for body in candidates)
        return self.take([body for body in candidates if self.sided.get(body, 0) == least])

    def outlets(self, headline: str, plan: Plan) -> list[Outlet] | None:
        """Bodies for every role of the plan (at random among those with the label), plus the ignoring one;
        None, with nothing used up, when no unrelated body is left for the headline."""
        used_before = set(self.used)
        pool = self.available(headline)
        outlets = []
        if plan.shift is not None:
            first, second = plan.shift if self.rng.random() < 0.5 else plan.shift[::-1]
            docs = [(self.take(pool[first]), first, BEFORE), (self.take(pool[second]), second, AFTER)]
            outlets.append(Outlet("shifting", docs))
        if plan.steady is not None:
            label = plan.steady
            docs = [(self.take(pool[label]), label, BEFORE), (self.take(pool[label]), label, AFTER)]
            outlets.append(Outlet("steady", docs))
        for label in plan.singles:
            outlets.append(Outlet(POSITION[label], [(self.take(pool[label]), label, SINGLE)]))
        ignored = self.unrelated_body(headline)
        if ignored is None:
            self.used = used_before
            return None
        return [*outlets, Outlet("ignores", [(ignored, "unrelated", SINGLE)])]


def eligible_headlines(fnc1: Fnc1) -> list[str]:
    """Claims a source can back or dispute: questions are left out."""
    return sorted(h for h in fnc1.labels if not h.rstrip().endswith("?"))


def stories(fnc1: Fnc1) -> dict[str, int]:
    """headline -> story (connected component of related headline-body pairs), as its smallest body id."""
    parent: dict[int, int] = {}
    for related in fnc1.labels.values():
        bodies = sorted(b for b, s in related.items() if s in RELATED)
        for body in bodies:
            parent.setdefault(body, body)
        for body in bodies[1:]:
            first, second = sorted((_find(parent, bodies[0]), _find(parent, body)))
            parent[second] = first
    story = {}
    for headline, related in fnc1.labels.items():
        bodies = [b for b, s in related.items() if s in RELATED]
        story[headline] = _find(parent, bodies[0]) if bodies else -1
    return story


def choose_cases(fnc1: Fnc1, max_cases: int, seed: int) -> list[tuple[str, list[Outlet]]]:
    """Best plan first, one case per story before a second one from any story, until `max_cases`."""
    usable = {b: t for b, t in fnc1.bodies.items() if MIN_CHARS <= len(t) <= MAX_CHARS}
    builder = Builder(fnc1, random.Random(seed), near_copy_groups(usable), stories(fnc1))
    per_story: dict[int, int] = defaultdict(int)
    cases: list[tuple[str, list[Outlet]]] = []
    headlines = eligible_headlines(fnc1)
    while len(cases) < max_cases:
        ranked = _ranked_plans(builder, headlines, per_story)
        if not ranked:
            break
        headline, plan = ranked[0]
        headlines.remove(headline)
        outlets = builder.outlets(headline, plan)
        if outlets is not None:
            cases.append((headline, outlets))
            per_story[builder.story[headline]] += 1
    return cases


def _ranked_plans(
    builder: Builder, headlines: Iterable[str], per_story: dict[int, int]
) -> list[tuple[str, Plan]]:
    plans = []
    for headline in headlines:
        plan = plan_roles({label: len(b) for label, b in builder.available(headline).items()})
        if plan is not None:
            plans.append((per_story[builder.story[headline]], -plan.score, headline, plan))
    return [(headline, plan) for *_, headline, plan in sorted(plans, key=lambda p: p[:3])]


# -- writing -------------------------------------------------------------------------------------------------


def _slug(text: str, words: int = 5) -> str:
    return "-".join(_WORD.findall(text.lower())[:words])


def _title(text: str, words: int = 10) -> str:
    """The body's first words: a neutral title that says nothing the text does not."""
    head = text.split()
    return " ".join(head[:words]) + (" …" if len(head) > words else "")


def name_outlets(outlets: list[Outlet], rng: random.Random) -> list[Outlet]:
    """Letters in a random order, so an outlet's letter or name says nothing about its role."""
    shuffled = outlets[:]
    rng.shuffle(shuffled)
    for index, outlet in enumerate(shuffled):
        outlet.source, outlet.name = f"outlet-{chr(97 + index)}", OUTLET_NAMES[index]
    return sorted(shuffled, key=lambda o: o.source)


def articles(case_name: str, outlets: list[Outlet], bodies: dict[int, str]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"fnc1-b{body}",
            "event_id": case_name,
            "source": outlet.source,
            "outlet": outlet.name,
            "title": _title(bodies[body]),
            "date": date,
            "text": bodies[body],
        }
        for outlet in outlets
        for body, _, date in outlet.documents
    ]


def stable_positions(outlets: list[Outlet]) -> dict[str, str]:
    """source -> its one position, for outlets that do not change it (a shifting outlet has none)."""
    labels = {o.source: {POSITION[stance] for _, stance, _ in o.documents} for o in outlets}
    return {source: next(iter(found)) for source, found in labels.items() if len(found) == 1}


def _pairs(outlets: list[Outlet], first: str, second: str) -> list[list[str]]:
    """Sorted source pairs where one outlet's stable position is `first` and the other's `second`."""
    stable = stable_positions(outlets)
    return [
        [a, b]
        for a, b in combinations(sorted(stable), 2)
        if (stable[a], stable[b]) in ((first, second), (second, first))
    ]


def expected(outlets: list[Outlet]) -> dict[str, Any]:
    return {
        "sources": sorted(o.source for o in outlets if o.role != "ignores"),
        "positions": [
            {"source": o.source, "doc_id": f"fnc1-b{body}", "position": POSITION[stance], "date": date}
            for o in outlets
            for body, stance, date in o.documents
        ],
        "differences": _pairs(outlets, "backs", "disputes"),
        "agreements": _pairs(outlets, "backs", "backs"),
        "shifting": sorted(o.source for o in outlets if o.role == "shifting"),
        "steady": sorted(o.source for o in outlets if o.role == "steady"),
        "not_addressed": sorted(o.source for o in outlets if o.role == "ignores"),
    }


def case_record(index: int, headline: str, outlets: list[Outlet], story: int) -> dict[str, Any]:
    name = f"fnc1-{index:02d}-{_slug(headline)}"
    claim = headline.strip().rstrip(".!")
    return {
        "name": name,
        "inputs": {
            "question": f"What do the outlets say about this claim: {claim}?",
            "target": headline.strip(),
            "corpus": f"../data/{NAME}/articles.jsonl",
            "filters": {"where": {"event_id": name}},
        },
        "expected": expected(outlets),
        "metadata": {
            "headline": headline,
            "fnc1_story": story,
            "roles": {o.source: o.role for o in outlets},
            "fnc1_labels": {
                o.source: [f"{body}:{stance}@{date}" for body, stance, date in o.documents] for o in outlets
            },
        },
    }


def build(
    fnc1_dir: Path, eval_dir: Path = EVAL, max_cases: int = MAX_CASES, seed: int = SEED
) -> dict[str, Any]:
    """Writes the corpus and the dataset under `eval_dir`; returns counts for the README."""
    fnc1 = load_fnc1(fnc1_dir)
    chosen = choose_cases(fnc1, max_cases, seed)
    rng = random.Random(seed + 1)
    story = stories(fnc1)
    cases, rows = [], []
    for index, (headline, outlets) in enumerate(chosen, 1):
        named = name_outlets(outlets, rng)
        record = case_record(index, headline, named, story[headline])
        cases.append(record)
        rows += articles(record["name"], named, fnc1.bodies)
    corpus = eval_dir / "data" / NAME / "articles.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_dataset(eval_dir / "datasets" / f"{NAME}.yaml", cases)
    return summary(cases, corpus)


DESCRIPTION = (
    "FNC-1 judgements: one case per FNC-1 headline (the claim), its outlets built from labelled bodies of the "
    "story-disjoint development subset. Expected: each document's position (agree/disagree/discuss/unrelated "
    "-> backs/disputes/reports/not_addressed), backs-vs-disputes differences, agreements, the outlet that "
    "changes its position between two dates, the one that keeps it, and the one that ignores the claim."
)


def write_dataset(path: Path, cases: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by eval/build_fnc1_judgements.py; see eval/README.md (fnc1_judgements).\n"
    body = yaml.safe_dump(
        {"description": DESCRIPTION, "cases": cases}, sort_keys=False, allow_unicode=True, width=110
    )
    path.write_text(header + body, encoding="utf-8")


def summary(cases: list[dict[str, Any]], corpus: Path) -> dict[str, Any]:
    roles: dict[str, int] = defaultdict(int)
    for case in cases:
        for role in case["metadata"]["roles"].values():
            roles[role] += 1
    return {
        "cases": len(cases),
        "outlets": dict(sorted(roles.items())),
        "documents": sum(len(c["expected"]["positions"]) for c in cases),
        "cases_with_differences": sum(1 for c in cases if c["expected"]["differences"]),
        "cases_with_agreements": sum(1 for c in cases if c["expected"]["agreements"]),
        "megabytes": round(corpus.stat().st_size / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "fnc1", nargs="?", type=Path, default=EVAL.parent.parent / "shared" / "corpus" / "fnc1"
    )
    parser.add_argument("--max-cases", type=int, default=MAX_CASES)
    parser.add_argument(
        "--eval-dir",
        type=Path,
        default=EVAL,
        help="where data/ and datasets/ go (e.g. build/eval_tune for a tuning set from fnc1_train's "
        "validation stories, written by scripts/stance_data.py)",
    )
    args = parser.parse_args()
    print(json.dumps(build(args.fnc1, args.eval_dir, args.max_cases), indent=2))


if __name__ == "__main__":
    main()
