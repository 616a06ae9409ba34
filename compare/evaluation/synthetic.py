"""A deterministic stand-in for an LLM, used to record the shipped replay cassettes (no real model was run).

It answers the LLM backend's two calls from the fenced evidence in the request, with no randomness:
- map (SourceAnalysis): the passages' sentences that share most words with the question become the claims
  and quotes; stance from the VADER tone of those sentences; one dated position per article, plus any sentence
  that reports a change ("previously", "shift", "reversed", "from ... to").
- reduce (CrossSourceAnalysis): claims of two sources that share words agree; differing stances make one
  difference; a source's earliest and latest positions make a shift.

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
from compare.evaluation.replay import message_pairs, schema_name

GENERATOR = "synthetic-extractive@1"
MODEL = "synthetic-extractive-1"
_ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{3,}")
_CHANGE = re.compile(r"\b(previously|shift(?:ed)?|revers(?:ed|al)|no longer|u-turn|instead|from .{8,80} to)\b", re.I)
_STOP = frozenset("that this with from have been were will would could about their there which what when "
                  "where said says into over more than also they them these those such".split())  # fmt: skip
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
    found = []
    for passage in passages:
        for start, end in sentence_spans(passage.text):
            text = passage.text[start:end]
            if 6 <= len(text.split()) <= 60:
                found.append(Sentence(passage, text, len(found), len(wanted & _words(text))))
    return found


def map_answer(passages: Sequence[Passage], question: str) -> dict[str, Any]:
    sentences = _sentences(passages, question)
    chosen = sorted(sentences, key=lambda s: (-s.score, s.order))[:6]
    joined = " ".join(s.text for s in chosen)
    claims = [
        {
            "claim": "The source reports: " + _short(s.text, 18).rstrip(".") + ".",
            "quotes": [{"doc_id": s.passage.doc_id, "text": perturb(_short(s.text))}],
        }
        for s in chosen[:4]
    ]
    return {
        "summary": " ".join(_short(s.text, 25) for s in chosen[:2]),
        "stance": tone_label(tone(joined)) if chosen else "not_addressed",
        "confidence": 0.6 if chosen else 0.2,
        "stance_quotes": [{"doc_id": s.passage.doc_id, "text": _short(s.text)} for s in chosen[:1]],
        "claims": claims,
        "positions": _positions(sentences, chosen),
    }


def _positions(sentences: list[Sentence], chosen: list[Sentence]) -> list[dict[str, Any]]:
    picked: dict[str, Sentence] = {}
    for sentence in chosen + sentences:
        picked.setdefault(sentence.passage.doc_id, sentence)
    changes = [s for s in sentences if _CHANGE.search(s.text)][:2]
    points = sorted({id(s): s for s in [*changes, *picked.values()]}.values(),
                    key=lambda s: (s.passage.date or "", s.order))  # fmt: skip
    return [
        {
            "doc_id": s.passage.doc_id,
            "date": s.passage.date,
            "stance": tone_label(tone(s.text)),
            "position": _short(s.text, 10),
            "quote": _short(s.text),
        }
        for s in points
    ]


def _overlap(first: str, second: str) -> float:
    a, b = _words(first), _words(second)
    return len(a & b) / len(a | b) if a and b else 0.0


def reduce_answer(analyses: list[dict[str, Any]], target: str) -> dict[str, Any]:
    agreements, partnered = [], set()
    for i, first in enumerate(analyses):
        for second in analyses[i + 1 :]:
            pairs = [(_overlap(a["claim"], b["claim"]), a, b) for a in first["claims"] for b in second["claims"]]
            if pairs:
                score, a, b = max(pairs, key=lambda p: p[0])
                if score >= 0.25:
                    agreements.append({"claim": a["claim"], "claim_ids": [a["id"], b["id"]]})
                    partnered |= {a["id"], b["id"]}
    names = [a["source"] for a in analyses]
    omissions = [
        {"claim": a["claims"][0]["claim"], "reported_by": [a["source"]],
         "not_reported_by": [n for n in names if n != a["source"]]}
        for a in analyses
        if a["claims"] and a["claims"][0]["id"] not in partnered and len(names) > 1
    ][:3]  # fmt: skip
    return {
        "agreements": agreements,
        "differences": _differences(analyses, target),
        "omissions": omissions,
        "shifts": [shift for a in analyses if (shift := _shift(a, target)) is not None],
    }


def _differences(analyses: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    if len({a["stance"] for a in analyses}) < 2:
        return []
    positions = [
        {"source": a["source"], "position": _TO_POSITION.get(a["stance"], "discuss"),
         "claim_ids": [a["claims"][0]["id"]] if a["claims"] else []}
        for a in analyses
    ]  # fmt: skip
    return [{"claim": f"Overall stance toward {target or 'the subject'}", "positions": positions}]


def _shift(analysis: dict[str, Any], target: str) -> dict[str, Any] | None:
    positions = analysis.get("positions") or []
    if len(positions) < 2 or positions[0]["quote"] == positions[-1]["quote"]:
        return None
    before, after = positions[0], positions[-1]

    def point(p: dict[str, Any]) -> dict[str, Any]:
        return {"doc_id": p["doc_id"], "date": p.get("date") or "", "stance": p["stance"], "quote": p["quote"]}

    return {
        "source": analysis["source"],
        "topic": target or "the subject",
        "description": f"from '{before['position']}' to '{after['position']}'",
        "before": point(before),
        "after": point(after),
        "confidence": 0.5,
    }


def respond(body: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int]] | None:
    """The replay server's generator: an answer to a map or reduce request, or None for anything else."""
    pairs = message_pairs(body.get("messages") or [])
    text = "\n".join(content for _, content in pairs)
    schema = schema_name(body)
    analyses = _fences(text, ANALYSIS_OPEN, ANALYSIS_CLOSE)
    passages = _fences(text, EVIDENCE_OPEN, EVIDENCE_CLOSE)
    if schema == "CrossSourceAnalysis" or (schema is None and analyses):
        payloads = [json.loads(body_text) for _, body_text in analyses]
        answer = reduce_answer(payloads, _header(text, "Target of the stance"))
    elif schema == "SourceAnalysis" or (schema is None and passages):
        found = [Passage(a.get("doc_id", ""), a.get("source", ""), a.get("date", ""), t) for a, t in passages]
        answer = map_answer(found, _header(text, "Question"))
    else:
        return None
    reply = json.dumps(answer, ensure_ascii=False)
    return answer, (len(text) // 4, len(reply) // 4)
