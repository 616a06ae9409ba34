"""A deterministic stand-in for an LLM, used to record the shipped replay cassettes (no real model was run).

It answers the LLM backend's calls from the fenced evidence in the request, with no randomness:
- map and single (MapAnswer, SingleAnswer): per source, the sentences that share most words with the question
  become its claims and quotes; stance from the VADER tone of those sentences; one position per article (its
  best sentence), plus a sentence that reports an earlier position ("previously", "initially", "had
  resisted", "shift from").
- reduce, and the comparing half of single (CrossSourceAnalysis): claims of two sources that share words
  agree; differing stances make one difference; a source's reported earlier (else earliest dated) position
  and its latest one make a shift.

On purpose it does what weak models do, so the quote gate and the metrics have something to catch: of every
ten quotes (chosen by a hash of the sentence) one is fabricated (its words reversed: never found, dropped),
one has straight quotes instead of curly ones (verified after normalisation), and one has a word changed
(repaired by the fuzzy match). Its figures therefore measure the pipeline and the metrics, not a model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from compare.analysis.prompts import ANALYSIS_CLOSE, ANALYSIS_OPEN, EVIDENCE_CLOSE, EVIDENCE_OPEN
from compare.analysis.sentiment import tone, tone_label
from compare.chunking import sentence_spans
from compare.evaluation.replay import schema_name, user_text

GENERATOR = "synthetic-extractive@1"
MODEL = "synthetic-extractive-1"
_ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{3,}")
_EARLIER = re.compile(
    r"\b(previously|formerly|initially|used to|had (?:long )?(?:resisted|refused|opposed)|shift from|from seeking)\b",
    re.IGNORECASE,
)
#: Marks, in a position's words, one the article reports as held before (what a model would say in words).
EARLIER_MARK = "earlier position: "
_STOP = frozenset(
    "that this with from have been were will would could about their there which what when "
    "where said says into over more than also they them these those such".split()
)
_TO_POSITION = {"positive": "agree", "negative": "disagree"}


@dataclass
class Passage:
    doc_id: str
    source: str
    date: str
    text: str


@dataclass
class Sentence:
    passage: Passage
    text: str
    order: int
    score: int = 0


def _fences(text: str, opening: str, closing: str) -> list[tuple[dict[str, str], str]]:
    pattern = re.compile(rf"{re.escape(opening)}([^\n]*)\n(.*?)\n{re.escape(closing)}", re.DOTALL)
    found = []
    for match in pattern.finditer(text):
        attributes = {}
        for key, raw in _ATTRIBUTE.findall(match.group(1)):
            try:
                attributes[key] = str(json.loads(raw))
            except json.JSONDecodeError:
                attributes[key] = raw
        found.append((attributes, match.group(2)))
    return found


def _header(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)} - _STOP


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 10


def perturb(text: str) -> str:
    """The quote as this stand-in 'copies' it: mostly verbatim, sometimes retyped, edited or invented."""
    bucket = _bucket(text)
    if bucket == 0:
        return " ".join(reversed(text.split()))
    if bucket == 1:
        return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    if bucket == 2:
        words = text.split()
        if len(words) > 8:
            words[len(words) // 2] = "reportedly"
            return " ".join(words)
    return text


def _short(text: str, words: int = 30) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words])


def _sentences(passages: Sequence[Passage], question: str) -> list[Sentence]:
    wanted = _words(question)
    found: list[Sentence] = []
    for passage in passages:
        for start, end in sentence_spans(passage.text):
            text = passage.text[start:end]
            if 6 <= len(text.split()) <= 60:
                found.append(Sentence(passage, text, len(found), len(wanted & _words(text))))
    return found


def source_analysis(source: str, passages: Sequence[Passage], question: str) -> dict[str, Any]:
    """One source's SourceAnalysis, claims and positions with ids <source>-<n> and <source>-p<n>."""
    sentences = _sentences(passages, question)
    chosen = sorted(sentences, key=lambda s: (-s.score, s.order))[:6]
    joined = " ".join(s.text for s in chosen)
    claims = [
        {
            "id": f"{source}-{index}",
            "claim": "The source reports: " + _short(s.text, 18).rstrip(".") + ".",
            "quotes": [{"doc_id": s.passage.doc_id, "text": perturb(_short(s.text))}],
        }
        for index, s in enumerate(chosen[:4], 1)
    ]
    return {
        "source": source,
        "summary": " ".join(_short(s.text, 25) for s in chosen[:2]),
        "stance": tone_label(tone(joined)) if chosen else "not_addressed",
        "confidence": 0.6 if chosen else 0.2,
        "stance_quotes": [{"doc_id": s.passage.doc_id, "text": _short(s.text)} for s in chosen[:1]],
        "claims": claims,
        "positions": _positions(source, sentences, chosen),
    }


def _positions(source: str, sentences: list[Sentence], chosen: list[Sentence]) -> list[dict[str, Any]]:
    """One position per article (its best sentence), plus sentences that report an earlier position."""
    picked: dict[str, Sentence] = {}
    for sentence in chosen + sentences:
        picked.setdefault(sentence.passage.doc_id, sentence)
    earlier = [s for s in sentences if _EARLIER.search(s.text)][:1]
    points = earlier + sorted(
        (s for s in picked.values() if s not in earlier), key=lambda s: (s.passage.date or "", s.order)
    )
    return [
        {
            "id": f"{source}-p{index}",
            "doc_id": s.passage.doc_id,
            "stance": tone_label(tone(s.text)),
            "position": (EARLIER_MARK if s in earlier else "") + _short(s.text, 12),
            "quote": _short(s.text),
            "_date": s.passage.date,
        }
        for index, s in enumerate(points, 1)
    ]


def _overlap(first: str, second: str) -> float:
    a, b = _words(first), _words(second)
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass
class Compact:
    """A source's analysis as the cross-source step sees it: claim and position ids with their words."""

    source: str
    stance: str
    claims: list[tuple[str, str]]
    positions: list[tuple[str, str, str, str]]  # id, date ('' if undated), stance, words


def _compact(analysis: dict[str, Any]) -> Compact:
    positions = [(p["id"], p.get("_date") or "", p["stance"], p["position"]) for p in analysis["positions"]]
    return Compact(
        analysis["source"], analysis["stance"], [(c["id"], c["claim"]) for c in analysis["claims"]], positions
    )


_LINE = re.compile(r"^(?P<id>\S+?)(?: \((?P<date>[^,]*), (?P<stance>\w+)\))?: (?P<text>.*)$")


def parse_compact(attributes: dict[str, str], body: str) -> Compact:
    """`id: claim` and `id (date, stance): position` lines of a reduce call's analysis fence."""
    compact = Compact(attributes.get("source", ""), attributes.get("stance", "neutral"), [], [])
    for line in body.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        if match.group("stance"):
            date = "" if match.group("date") == "undated" else match.group("date")
            compact.positions.append((match.group("id"), date, match.group("stance"), match.group("text")))
        else:
            compact.claims.append((match.group("id"), match.group("text")))
    return compact


def cross_source(analyses: list[Compact], target: str) -> dict[str, Any]:
    agreements, partnered = [], set()
    for i, first in enumerate(analyses):
        for second in analyses[i + 1 :]:
            pairs = [(_overlap(a, b), ida, idb) for ida, a in first.claims for idb, b in second.claims]
            if pairs:
                score, ida, idb = max(pairs)
                if score >= 0.25:
                    agreements.append({"claim": dict(first.claims)[ida], "claim_ids": [ida, idb]})
                    partnered |= {ida, idb}
    names = [a.source for a in analyses]
    omissions = [
        {
            "claim": a.claims[0][1],
            "reported_by": [a.source],
            "not_reported_by": [n for n in names if n != a.source],
        }
        for a in analyses
        if a.claims and a.claims[0][0] not in partnered and len(names) > 1
    ][:3]
    return {
        "agreements": agreements,
        "differences": _differences(analyses, target),
        "omissions": omissions,
        "shifts": [shift for a in analyses if (shift := _shift(a, target)) is not None],
    }


def _differences(analyses: list[Compact], target: str) -> list[dict[str, Any]]:
    if len({a.stance for a in analyses}) < 2:
        return []
    positions = [
        {
            "source": a.source,
            "position": _TO_POSITION.get(a.stance, "discuss"),
            "claim_ids": [a.claims[0][0]] if a.claims else [],
        }
        for a in analyses
    ]
    return [{"claim": f"Overall stance toward {target or 'the subject'}", "positions": positions}]


def _shift(analysis: Compact, target: str) -> dict[str, Any] | None:
    """An earlier position the source itself reports, else its earliest dated one; then its latest."""
    positions = analysis.positions
    if len(positions) < 2:
        return None
    earlier = [p for p in positions if p[3].startswith(EARLIER_MARK)]
    before = earlier[0] if earlier else min(positions, key=lambda p: p[1] or "9999")
    rest = [p for p in positions if p is not before]
    after = max(rest, key=lambda p: (p[1] or "", -positions.index(p)))
    if not earlier and before[1] == after[1]:
        return None  # two positions of one day, none reported as earlier: no change over time
    return {
        "topic": target or "the subject",
        "description": f"from '{before[3]}' to '{after[3]}'",
        "before": {"ref": before[0], "stance": before[2]},
        "after": {"ref": after[0], "stance": after[2]},
        "confidence": 0.5,
    }


def _strip_private(analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        **analysis,
        "positions": [{k: v for k, v in p.items() if not k.startswith("_")} for p in analysis["positions"]],
    }


def respond(body: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int]] | None:
    """The replay server's generator: an answer for the LLM backend's map, reduce or single call."""
    text = user_text(body.get("messages") or [])
    schema = schema_name(body)
    target = _header(text, "Target of the stance")
    if schema == "CrossSourceAnalysis":
        compacts = [parse_compact(a, b) for a, b in _fences(text, ANALYSIS_OPEN, ANALYSIS_CLOSE)]
        answer = cross_source(compacts, target)
    elif schema in ("MapAnswer", "SingleAnswer"):
        by_source: dict[str, list[Passage]] = {}
        for attributes, body_text in _fences(text, EVIDENCE_OPEN, EVIDENCE_CLOSE):
            passage = Passage(
                attributes.get("doc_id", ""),
                attributes.get("source", ""),
                attributes.get("date", ""),
                body_text,
            )
            by_source.setdefault(passage.source, []).append(passage)
        question = _header(text, "Question")
        analyses = [source_analysis(source, found, question) for source, found in by_source.items()]
        answer = {"sources": [_strip_private(a) for a in analyses]}
        if schema == "SingleAnswer":
            answer |= cross_source([_compact(a) for a in analyses], target)
    else:
        return None
    reply = json.dumps(answer, ensure_ascii=False)
    return answer, (len(text) // 4, len(reply) // 4)
