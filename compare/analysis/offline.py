"""The offline analytic comparator: no key, no network, every quote read from the stored documents.

1. Evidence: the sentences of the retrieved chunks (offsets into the stored text), scored by relevance to
   the question with the embedder.
2. Claims and positions (`positions.py`): the question's proposition, when it states one, and the most
   relevant statements of the sources; each source's position toward each — backs / disputes / reports /
   does not address — read from its stored documents by the claim-stance cross-encoder (`stance_model.py`),
   with a calibrated confidence and the sentence that shows it.
3. Judgements from positions (`judgements.py`): agreements, differences, omissions, shifts of position over
   time, and the answer at the top; plus changes a document reports in words (`reported_shifts.py`).
4. Tone toward the target (VADER), shown as tone, never as a position.
5. Summaries: the most relevant, mutually diverse sentences of each source, as verified quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from compare import __version__
from compare.analysis.base import AnalysisRequest, Backend, register_backend
from compare.analysis.judgements import (
    agreements,
    answer,
    differences,
    is_proposition,
    omissions,
    position_shifts,
)
from compare.analysis.positions import (
    Candidate,
    SourceDocs,
    check_silent_sources,
    choose_claims,
    judgements,
    plan_readings,
    read_all,
)
from compare.analysis.quotes import verify_quote
from compare.analysis.reported_shifts import reported_shifts, states_a_change
from compare.analysis.sentiment import stance_toward
from compare.analysis.stance_model import StanceModel, shared_model
from compare.chunking import sentence_spans
from compare.embedding import Embedder
from compare.errors import CompareError
from compare.retrieval import mmr_by_relevance
from compare.settings import Settings
from compare.types import (
    Agreement,
    AnswerSentence,
    Claim,
    ClaimJudgement,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Omission,
    Quote,
    Shift,
    SourceView,
)

#: Sentences kept per source as evidence, and their relevance floor relative to the best sentence.
EVIDENCE_PER_SOURCE = 14
RELATIVE_FLOOR = 0.55
SUMMARY_SENTENCES = 3
#: Sentences reporting a change kept per source beyond the relevance floor (see _keep_relevant).
CHANGE_SENTENCES = 4
_MIN_WORDS, _MAX_WORDS = 6, 90


@dataclass
class Sentence:
    source: str
    doc_id: str
    date: str | None
    start: int
    end: int
    text: str
    relevance: float = 0.0
    vector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass
class Judgements:
    """What the judgement layer adds to a comparison; every label in it rests on sure positions."""

    proposition: bool
    claims: list[ClaimJudgement]
    shifts: list[Shift]
    agreements: list[Agreement]
    differences: list[Difference]
    omissions: list[Omission]
    answer: list[AnswerSentence]
    warnings: list[str]


@lru_cache(maxsize=512)
def _spans(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(sentence_spans(text))


def _is_statement(text: str) -> bool:
    words = len(text.split())
    return _MIN_WORDS <= words <= _MAX_WORDS and text.rstrip()[-1:] in ".!?\"”’)'…"


class OfflineBackend(Backend):
    name = "offline"

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.model = f"{embedder.name} + claim-stance cross-encoder + vader tone"
        self._stance: StanceModel | None = None
        self.warnings: list[str] = []

    # -- entry point -------------------------------------------------------------------------------------

    def compare(self, request: AnalysisRequest) -> Comparison:
        self.warnings = []
        sentences = self._evidence(request)
        if not sentences:
            raise CompareError(
                "the retrieved passages contain no usable sentences",
                hint="widen the filters or raise -k; check `ncompare sources` for what is stored",
            )
        judged = self._judgements(request, sentences)
        views = [
            self._source_view(source, sentences, judged.claims, request)
            for source in request.retrieved.by_source
        ]
        return Comparison(
            question=request.question,
            target=request.target,
            target_is_proposition=judged.proposition,
            answer=judged.answer,
            claims=judged.claims,
            sources=views,
            shifts=judged.shifts,
            agreements=judged.agreements,
            differences=judged.differences,
            omissions=judged.omissions,
            meta=ComparisonMeta(
                backend="offline",
                model=self.model if self._stance is None else f"{self.model} ({self._stance.method})",
                settings_hash="",
                package_version=__version__,
                warnings=self.warnings,
            ),
        )

    def judge(self, request: AnalysisRequest) -> Judgements | None:
        """The measured judgements alone (claims, positions, shifts, agreements, differences, omissions, the
        answer), for another backend's comparison; None when the retrieved passages hold no statement."""
        self.warnings = []
        sentences = self._evidence(request)
        return self._judgements(request, sentences) if sentences else None

    def _judgements(self, request: AnalysisRequest, sentences: list[Sentence]) -> Judgements:
        names = _outlet_names(request)
        proposition = is_proposition(request.target, explicit=request.target_given) or (
            not request.target_given and is_proposition(request.question, explicit=False)
        )
        claims = self._judge(request, sentences, proposition)
        shifts = position_shifts(claims, names)
        shifts += reported_shifts(sentences, request.documents, self._quote, self.embedder.embed)
        shifts.sort(key=lambda shift: -shift.score)
        found_agreements, found_differences = agreements(claims), differences(claims)
        return Judgements(
            proposition=proposition,
            claims=claims,
            shifts=shifts,
            agreements=found_agreements,
            differences=found_differences,
            omissions=omissions(claims),
            answer=answer(claims, shifts, found_agreements, found_differences, names),
            warnings=list(self.warnings),
        )

    # -- evidence ----------------------------------------------------------------------------------------

    def _evidence(self, request: AnalysisRequest) -> list[Sentence]:
        found: dict[tuple[str, int], Sentence] = {}
        for source, docs in request.retrieved.by_source.items():
            for evidence in docs:
                doc = request.documents.get(evidence.doc_id)
                if doc is None:
                    continue
                for hit in evidence.hits:
                    for start, end in _spans(doc.text):
                        text = doc.text[start:end]
                        if start >= hit.char_start and end <= hit.char_end and _is_statement(text):
                            found.setdefault(
                                (doc.id, start), Sentence(source, doc.id, doc.date, start, end, text)
                            )
        sentences = list(found.values())
        if not sentences:
            return []
        self._embed(sentences)
        question = self.embedder.embed([request.question])[0]
        for sentence in sentences:
            sentence.relevance = float(sentence.vector @ question)
        return _keep_relevant(sentences)

    def _embed(self, sentences: Sequence[Sentence]) -> None:
        # The engine hands backends a memoising embedder: sentences embedded again later cost nothing, and
        # the memo is cleared per question.
        vectors = self.embedder.embed([s.text for s in sentences])
        for sentence, vector in zip(sentences, vectors, strict=True):
            sentence.vector = vector

    # -- claims and positions ----------------------------------------------------------------------------

    def _judge(
        self, request: AnalysisRequest, sentences: list[Sentence], proposition: bool
    ) -> list[ClaimJudgement]:
        model = self._stance_model()
        if model is None:
            return []
        config = self.settings.judgement
        candidates: list[Candidate] = []
        if proposition:
            text = request.target if request.target_given else request.question
            vector = self.embedder.embed([text])[0]
            candidates.append(Candidate("target", text.strip(), vector, None, is_target=True))
        statements = [(request.documents[s.doc_id], s.start, s.end, s.relevance, s.vector) for s in sentences]
        candidates += choose_claims(statements, config)
        docs = _source_docs(request, sentences)
        readings, warnings = plan_readings(candidates, docs, config)
        self.warnings += warnings
        candidates = candidates[: 1 + max((r.claim for r in readings), default=-1)]
        read_all(model, candidates, readings)
        all_sources = [*request.retrieved.by_source, *request.retrieved.stats.sources_without_matches]
        all_sources = list(dict.fromkeys(all_sources))
        readings += check_silent_sources(model, candidates, readings, all_sources, request.related, config)
        return judgements(candidates, readings, all_sources, self._quote)

    def _stance_model(self) -> StanceModel | None:
        if self._stance is None:
            try:
                self._stance = shared_model()
            except CompareError as exc:
                self.warnings.append(f"claim-stance model unavailable ({exc}); no positions judged")
                return None
        return self._stance

    # -- views -------------------------------------------------------------------------------------------

    def _source_view(
        self, source: str, sentences: list[Sentence], claims: list[ClaimJudgement], request: AnalysisRequest
    ) -> SourceView:
        docs = request.retrieved.by_source.get(source, [])
        mine = [s for s in sentences if s.source == source]
        dates = sorted(d.date for d in docs if d.date)
        summary_sentences = _summary(mine)
        summary_quotes = [self._quote(request.documents[s.doc_id], s.start, s.end) for s in summary_sentences]
        target = next((c for c in claims if c.is_target), None)
        outlet = next((d.outlet for d in docs if d.outlet), None)
        return SourceView(
            source=source,
            outlet=outlet,
            documents=[DocRef(doc_id=d.doc_id, title=d.title, date=d.date, url=d.url) for d in docs],
            first_date=dates[0] if dates else None,
            last_date=dates[-1] if dates else None,
            summary=" … ".join(q.text for q in summary_quotes),
            summary_quotes=summary_quotes,
            stance=stance_toward(request.target, [s.text for s in mine], [s.relevance for s in mine]),
            position=target.position(source) if target is not None else None,
            claims=_source_claims(source, claims),
        )

    # -- quotes ------------------------------------------------------------------------------------------

    def _quote(self, doc: Document, start: int, end: int) -> Quote:
        """Every quote goes through the same gate as a model's would: it must be found in the stored text."""
        start, end = _trim(doc.text, start, end)
        return verify_quote(doc.text[start:end], doc, hint_start=start)


def _outlet_names(request: AnalysisRequest) -> dict[str, str]:
    names = {}
    for source, docs in request.retrieved.by_source.items():
        names[source] = next((d.outlet for d in docs if d.outlet), None) or source
    return names


def _source_docs(request: AnalysisRequest, sentences: list[Sentence]) -> list[SourceDocs]:
    out = []
    for source, evidence in request.retrieved.by_source.items():
        docs = [request.documents[e.doc_id] for e in evidence if e.doc_id in request.documents]
        vectors: dict[str, list[np.ndarray]] = {}
        for sentence in sentences:
            if sentence.source == source:
                vectors.setdefault(sentence.doc_id, []).append(sentence.vector)
        out.append(SourceDocs(source, docs, {d: np.stack(v) for d, v in vectors.items()}))
    return out


def _source_claims(source: str, claims: list[ClaimJudgement]) -> list[Claim]:
    """The claims this source takes a sure position on, with the sentence that shows it."""
    out = []
    for claim in claims:
        position = claim.position(source)
        if position is not None and position.sure and position.label in ("backs", "disputes", "reports"):
            out.append(Claim(id=claim.id, text=claim.text, quotes=[position.quote] if position.quote else []))
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _keep_relevant(sentences: list[Sentence]) -> list[Sentence]:
    best = max(s.relevance for s in sentences)
    floor = max(0.1, best * RELATIVE_FLOOR)
    kept: list[Sentence] = []
    by_source: dict[str, list[Sentence]] = {}
    for sentence in sentences:
        by_source.setdefault(sentence.source, []).append(sentence)
    for source_sentences in by_source.values():
        ranked = sorted(source_sentences, key=lambda s: -s.relevance)
        chosen = [s for s in ranked if s.relevance >= floor][:EVIDENCE_PER_SOURCE] or ranked[:2]
        # Sentences that report a change are kept a little below the floor: the change is often told in
        # words further from the question's than the surrounding claims.
        changes = [
            s for s in ranked if s not in chosen and s.relevance >= floor * 0.7 and states_a_change(s.text)
        ]
        kept.extend(chosen + changes[:CHANGE_SENTENCES])
    return kept


def _summary(sentences: list[Sentence]) -> list[Sentence]:
    if not sentences:
        return []
    vectors = np.stack([s.vector for s in sentences])
    weights = np.array([s.relevance for s in sentences], dtype=np.float32)
    picked = mmr_by_relevance(weights, vectors, SUMMARY_SENTENCES, 0.6)
    chosen = [sentences[i] for i in picked]
    return sorted(chosen, key=lambda s: (s.date is None, s.date or "", s.doc_id, s.start))


@register_backend("offline")
def _offline(rest: str, settings: Settings, embedder: Embedder, api_key: str | None = None) -> Backend:
    return OfflineBackend(settings, embedder)
