"""The offline analytic comparator: no key, no network, every quote read from the stored documents.

1. Evidence: the sentences of the retrieved chunks (offsets into the stored text), scored by relevance to
   the question with the embedder.
2. Claims: relevant sentences clustered across sources by embedding similarity; a cluster is a claim.
3. Positions: for each claim, each source agrees, disagrees, discusses or does not address it, from the
   local claim-stance classifier (FNC-1-trained) on that source's passages; agreements, differences and the
   omission matrix follow from the positions.
4. Stance toward the question's target: VADER tone of the relevant sentences, weighted by relevance.
5. Shifts: (a) within a document, sentences that report a change ("shifted from X to Y", "previously ...",
   "reversed", "no longer") paired with the position they replace; (b) across a source's dated documents, the
   same claim in earlier and later wording whose stance or cue phrases differ.
6. Summaries: the most relevant, mutually diverse sentences of each source, as verified quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from compare import __version__
from compare.analysis.base import AnalysisRequest, Backend, register_backend
from compare.analysis.claim_stance import STOPWORDS as _STOPWORDS
from compare.analysis.quotes import verify_quote
from compare.analysis.sentiment import stance_toward, tone, tone_label
from compare.chunking import sentence_spans
from compare.embedding import Embedder
from compare.errors import CompareError
from compare.retrieval import mmr_by_relevance
from compare.settings import Settings
from compare.types import (
    Agreement,
    Claim,
    ClaimStanceLabel,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Omission,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourceView,
)

#: Sentences at least this similar (cosine) join the same claim cluster.
CLAIM_SIMILARITY = 0.62
#: Sentences kept per source as evidence, and their relevance floor relative to the best sentence.
EVIDENCE_PER_SOURCE = 14
RELATIVE_FLOOR = 0.55
MAX_CLAIMS = 8
SUMMARY_SENTENCES = 3
#: The same claim in a source's earlier and later documents, less similar than this, counts as reworded.
REWORDED_BELOW = 0.8
_FUNCTION_WORDS = frozenset(
    "this that these those with from have has had will would could should their there they them then than "
    "when where which while what also into over under about after before been being were said says such "
    "more most some other only very just over upon within without".split()
)
#: A claim-stance answer under this confidence is treated as `discuss` (reported, no side taken).
POSITION_CONFIDENCE = 0.45

_MIN_WORDS, _MAX_WORDS = 6, 90
_CHANGE_CUES = re.compile(
    r"\b(shift(?:ed|s|ing)?|no longer|instead|revers(?:e|ed|es|al|ing)|u-turn|about-face|pivot(?:ed|s)?|"
    r"backtrack(?:ed|s)?|chang(?:e|ed|es|ing) (?:course|tack|its|their|his|her)"
    r"|adjust(?:ing|ed)? (?:its|their)"
    r"|move(?:d)? (?:away )?from|transition|now (?:acknowledge|say|believe|support|oppose)s?)\b",
    re.IGNORECASE,
)
_OLD_POSITION = re.compile(
    r"\b(previously|formerly|initially|at first|used to|had (?:long )?(?:resisted|refused|opposed|rejected|"
    r"withheld|insisted)|once (?:opposed|resisted|refused|rejected|insisted|ruled out)|until (?:now|recently)|"
    r"earlier (?:this|that) (?:year|month))\b",
    re.IGNORECASE,
)
_FROM_TO = re.compile(
    r"\bfrom\s+(?P<before>[^,;]{8,160}?)\s+to\s+(?P<after>[^,;]{8,160}?)(?=[,;.]|\s+(?:and|as|in|amid)\b|$)"
)


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
class Cluster:
    members: list[Sentence]
    centroid: np.ndarray

    @property
    def representative(self) -> Sentence:
        return max(self.members, key=lambda s: s.relevance)

    @property
    def sources(self) -> list[str]:
        return sorted({s.source for s in self.members})

    @property
    def weight(self) -> float:
        return sum(s.relevance for s in self.members)


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
        self.model = f"{embedder.name} + vader + claim-stance"
        self._claim_model: object | None = None
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
        clusters = cluster_sentences(sentences)[:MAX_CLAIMS]
        sources = list(request.retrieved.by_source)
        positions = self._positions(clusters, sources, request)
        views = [self._source_view(source, sentences, clusters, request) for source in sources]
        return Comparison(
            question=request.question,
            target=request.target,
            sources=views,
            shifts=self._shifts(sentences, clusters, request),
            agreements=self._agreements(clusters, positions, request),
            differences=self._differences(clusters, positions, views, request),
            omissions=self._omissions(clusters, positions, sources),
            meta=ComparisonMeta(
                backend="offline",
                model=self.model,
                settings_hash="",
                package_version=__version__,
                warnings=self.warnings,
            ),
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
        # The engine hands backends a memoising embedder: sentences embedded again later (claim stance)
        # cost nothing, and the memo is cleared per question.
        vectors = self.embedder.embed([s.text for s in sentences])
        for sentence, vector in zip(sentences, vectors, strict=True):
            sentence.vector = vector

    # -- positions on claims -----------------------------------------------------------------------------

    def _positions(
        self, clusters: list[Cluster], sources: list[str], request: AnalysisRequest
    ) -> dict[int, dict[str, tuple[ClaimStanceLabel, Quote | None]]]:
        """For each claim and source: agree/disagree/discuss/unrelated, with the quote that shows it."""
        model = self._load_claim_model()
        result: dict[int, dict[str, tuple[ClaimStanceLabel, Quote | None]]] = {}
        jobs: list[tuple[int, str, Document, int, str]] = []
        for index, cluster in enumerate(clusters):
            result[index] = {}
            for source in sources:
                excerpt = _source_excerpt(source, cluster, request)
                if excerpt is None:
                    result[index][source] = ("unrelated", None)
                    continue
                doc, offset, text = excerpt
                jobs.append((index, source, doc, offset, text))
        if model is None:
            for index, source, doc, _, _ in jobs:
                result[index][source] = _position_by_similarity(clusters[index], source, doc, self)
            return result
        claims = [clusters[index].representative.text for index, *_ in jobs]
        answers = model.predict_many([(claim, text) for claim, (*_, text) in zip(claims, jobs, strict=True)])  # type: ignore[attr-defined]
        for (index, source, doc, offset, _), answer in zip(jobs, answers, strict=True):
            label: ClaimStanceLabel = answer.label
            member = next((s for s in clusters[index].members if s.source == source), None)
            if member is not None and label == "unrelated":
                label = "discuss"  # the source states this claim in its own words
            elif label in ("agree", "disagree") and answer.confidence < POSITION_CONFIDENCE:
                label = "discuss"
            quote = None
            if label != "unrelated":
                if member is not None:
                    quote = self._quote(
                        doc if doc.id == member.doc_id else request.documents[member.doc_id],
                        member.start,
                        member.end,
                    )
                else:
                    quote = self._quote(doc, offset + answer.evidence_start, offset + answer.evidence_end)
            result[index][source] = (label, quote)
        return result

    def _load_claim_model(self) -> object | None:
        if self._claim_model is None:
            try:
                from compare.analysis.claim_stance import ClaimStanceModel

                self._claim_model = ClaimStanceModel.load(self.embedder)
            except (ImportError, CompareError) as exc:
                self.warnings.append(
                    f"claim-stance model unavailable ({exc}); positions from similarity only"
                )
                return None
        return self._claim_model

    # -- views -------------------------------------------------------------------------------------------

    def _source_view(
        self, source: str, sentences: list[Sentence], clusters: list[Cluster], request: AnalysisRequest
    ) -> SourceView:
        docs = request.retrieved.by_source.get(source, [])
        mine = [s for s in sentences if s.source == source]
        dates = sorted(d.date for d in docs if d.date)
        summary_sentences = _summary(mine)
        summary_quotes = [self._quote(request.documents[s.doc_id], s.start, s.end) for s in summary_sentences]
        claims = [
            Claim(
                id=f"c{index + 1}",
                text=cluster.representative.text,
                quotes=[
                    self._quote(request.documents[s.doc_id], s.start, s.end)
                    for s in _best_per_doc(cluster, source)
                ],
            )
            for index, cluster in enumerate(clusters)
            if source in cluster.sources
        ]
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
            claims=claims,
        )

    def _agreements(
        self,
        clusters: list[Cluster],
        positions: dict[int, dict[str, tuple[ClaimStanceLabel, Quote | None]]],
        request: AnalysisRequest,
    ) -> list[Agreement]:
        agreements = []
        for index, cluster in enumerate(clusters):
            backing = {
                s: q for s, (label, q) in positions[index].items() if label in ("agree", "discuss") and q
            }
            if len(backing) >= 2 and not any(label == "disagree" for label, _ in positions[index].values()):
                agreements.append(
                    Agreement(
                        claim=cluster.representative.text,
                        sources=sorted(backing),
                        quotes=list(backing.values()),
                    )
                )
        return agreements

    def _differences(
        self,
        clusters: list[Cluster],
        positions: dict[int, dict[str, tuple[ClaimStanceLabel, Quote | None]]],
        views: list[SourceView],
        request: AnalysisRequest,
    ) -> list[Difference]:
        differences = []
        for index, cluster in enumerate(clusters):
            stated = {s: (label, q) for s, (label, q) in positions[index].items() if label != "unrelated"}
            if len(stated) >= 2 and len({label for label, _ in stated.values()}) > 1:
                differences.append(
                    Difference(
                        claim=cluster.representative.text,
                        positions=[
                            Position(source=s, position=label, quotes=[q] if q else [])
                            for s, (label, q) in sorted(stated.items())
                        ],
                    )
                )
        addressed = [v for v in views if v.stance.label != "not_addressed"]
        if len({v.stance.label for v in addressed}) > 1:
            differences.append(
                Difference(
                    claim=f"Overall tone toward {request.target}",
                    positions=[
                        Position(source=v.source, position=v.stance.label, quotes=v.summary_quotes[:1])
                        for v in addressed
                    ],
                )
            )
        return differences

    def _omissions(
        self,
        clusters: list[Cluster],
        positions: dict[int, dict[str, tuple[ClaimStanceLabel, Quote | None]]],
        sources: list[str],
    ) -> list[Omission]:
        omissions = []
        for index, cluster in enumerate(clusters):
            reported = sorted(s for s, (label, _) in positions[index].items() if label != "unrelated")
            missing = sorted(set(sources) - set(reported))
            if reported and missing:
                omissions.append(
                    Omission(claim=cluster.representative.text, reported_by=reported, not_reported_by=missing)
                )
        return omissions

    # -- shifts ------------------------------------------------------------------------------------------

    def _shifts(
        self, sentences: list[Sentence], clusters: list[Cluster], request: AnalysisRequest
    ) -> list[Shift]:
        shifts = self._reported_shifts(sentences, request) + self._cross_document_shifts(clusters, request)
        best: dict[tuple[str, int, int], Shift] = {}
        for shift in shifts:
            key = (shift.source, shift.after.quote.char_start, shift.before.quote.char_start)
            if key not in best or shift.score > best[key].score:
                best[key] = shift
        ordered = sorted(best.values(), key=lambda s: -s.score)
        per_source: dict[str, int] = {}
        kept = []
        for shift in ordered:
            if per_source.get(shift.source, 0) < 3:
                kept.append(shift)
                per_source[shift.source] = per_source.get(shift.source, 0) + 1
        return sorted(kept, key=lambda s: (s.source, s.after.date or "", s.before.date or ""))

    def _reported_shifts(self, sentences: list[Sentence], request: AnalysisRequest) -> list[Shift]:
        """A document reports a change: 'a shift from X to Y', or 'previously ...' beside the new line."""
        shifts: list[Shift] = []
        by_doc: dict[str, list[Sentence]] = {}
        for sentence in sentences:
            by_doc.setdefault(sentence.doc_id, []).append(sentence)
        for doc_id, doc_sentences in by_doc.items():
            doc = request.documents[doc_id]
            for sentence in doc_sentences:
                cue = _CHANGE_CUES.search(sentence.text)
                span = _FROM_TO.search(sentence.text)
                if cue and span and span.start() >= cue.start() - 40:
                    shifts.append(self._from_to_shift(doc, sentence, cue.group(0), span, request.target))
            olds = [s for s in doc_sentences if _OLD_POSITION.search(s.text)]
            news = [s for s in doc_sentences if _CHANGE_CUES.search(s.text) or s not in olds]
            for old in olds:
                partner = _closest(old, [n for n in news if n is not old])
                if partner is not None:
                    cues = sorted(
                        {m.group(0).lower() for m in _OLD_POSITION.finditer(old.text)}
                        | {m.group(0).lower() for m in _CHANGE_CUES.finditer(partner.text)}
                    )
                    shifts.append(self._shift(doc, old, partner, cues, request.target, reported=True))
        return shifts

    def _from_to_shift(
        self, doc: Document, sentence: Sentence, cue: str, span: re.Match[str], target: str
    ) -> Shift:
        before = self._quote(doc, sentence.start + span.start("before"), sentence.start + span.end("before"))
        after = self._quote(doc, sentence.start + span.start("after"), sentence.start + span.end("after"))
        return Shift(
            source=sentence.source,
            topic=target,
            before=ShiftPoint(date=None, stance=tone_label(tone(before.text)), quote=before),
            after=ShiftPoint(date=doc.date, stance=tone_label(tone(after.text)), quote=after),
            description=f"Reported {cue.lower()}: from “{before.text}” to “{after.text}”",
            cues=[cue.lower()],
            score=round(0.9 + 0.1 * sentence.relevance, 3),
        )

    def _shift(
        self,
        doc: Document,
        old: Sentence,
        new: Sentence,
        cues: list[str],
        target: str,
        *,
        reported: bool,
        old_doc: Document | None = None,
    ) -> Shift:
        before = self._quote(old_doc or doc, old.start, old.end)
        after = self._quote(doc, new.start, new.end)
        before_label, after_label = tone_label(tone(old.text)), tone_label(tone(new.text))
        kind = "Reported change" if reported else "Changed position"
        return Shift(
            source=new.source,
            topic=target,
            before=ShiftPoint(date=None if reported else old.date, stance=before_label, quote=before),
            after=ShiftPoint(date=new.date, stance=after_label, quote=after),
            description=f"{kind} ({', '.join(cues) or 'wording'}): {before_label} → {after_label}",
            cues=cues,
            score=round(
                min(1.0, 0.5 + 0.15 * len(cues) + 0.3 * (before_label != after_label) + 0.2 * new.relevance),
                3,
            ),
        )

    def _cross_document_shifts(self, clusters: list[Cluster], request: AnalysisRequest) -> list[Shift]:
        """The same claim in a source's earliest and latest documents. A shift when the later wording
        disputes the earlier one (claim-level stance), carries a change cue, turns the tone, or says the
        claim in substantially new words; the evidence is weighed in the score."""
        pairs = [pair for cluster in clusters for pair in _earliest_latest(cluster)]
        if not pairs:
            return []
        disputes = self._disputes([(old.text, new.text) for old, new in pairs])
        shifts = []
        for (old, new), disputed in zip(pairs, disputes, strict=True):
            cues = sorted({m.group(0).lower() for m in _CHANGE_CUES.finditer(new.text)})
            changed_tone = tone_label(tone(old.text)) != tone_label(tone(new.text))
            reworded = float(old.vector @ new.vector) < REWORDED_BELOW
            if not (cues or changed_tone or disputed or reworded):
                continue
            shift = self._shift(
                request.documents[new.doc_id],
                old,
                new,
                cues + (["disputes earlier wording"] if disputed else []),
                request.target,
                reported=False,
                old_doc=request.documents[old.doc_id],
            )
            if disputed:
                shift.before.stance, shift.after.stance = "agree", "disagree"
            if not (cues or disputed or changed_tone):
                shift.description = f"Same claim, new wording ({old.date} → {new.date})"
            shift.description += _wording_change(old.text, new.text)
            shift.score = round(shift.score * (1.0 if cues or disputed or changed_tone else 0.6), 3)
            shifts.append(shift)
        return shifts

    def _disputes(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """Does the later sentence dispute the earlier one? The claim-stance model, earlier as the claim."""
        model = self._load_claim_model()
        if model is None:
            return [False] * len(pairs)
        answers = model.predict_many(pairs)  # type: ignore[attr-defined]
        return [a.label == "disagree" and a.confidence >= POSITION_CONFIDENCE for a in answers]

    # -- quotes ------------------------------------------------------------------------------------------

    def _quote(self, doc: Document, start: int, end: int) -> Quote:
        """Every quote goes through the same gate as a model's would: it must be found in the stored text."""
        start, end = _trim(doc.text, start, end)
        return verify_quote(doc.text[start:end], doc, hint_start=start)


def _earliest_latest(cluster: Cluster) -> list[tuple[Sentence, Sentence]]:
    """Per source, the cluster's earliest and latest dated sentences, when their dates differ."""
    pairs = []
    for source in cluster.sources:
        dated = sorted(
            (s for s in cluster.members if s.source == source and s.date), key=lambda s: s.date or ""
        )
        if len(dated) >= 2 and dated[0].date != dated[-1].date:
            pairs.append((dated[0], dated[-1]))
    return pairs


_CONTENT_WORD = re.compile(r"[A-Za-z$][\w$.,-]*[\w]|[A-Z]{2,}")


def _content_words(text: str) -> list[str]:
    words = [w for w in _CONTENT_WORD.findall(text) if len(w) > 3 or w.isupper() or w[0] == "$"]
    return [w for w in words if w.lower() not in _FUNCTION_WORDS and w.lower() not in _STOPWORDS]


def _wording_change(old: str, new: str, most: int = 4) -> str:
    """'; adds “Patriot”, “$1.85 billion”; drops “defensive”': what the later wording says that the earlier
    did not, and the reverse (content words, in order of appearance)."""
    old_words, new_words = _content_words(old), _content_words(new)
    old_set, new_set = {w.lower() for w in old_words}, {w.lower() for w in new_words}
    added = list(dict.fromkeys(w for w in new_words if w.lower() not in old_set))[:most]
    dropped = list(dict.fromkeys(w for w in old_words if w.lower() not in new_set))[:most]
    parts = []
    if added:
        parts.append("adds " + ", ".join(f"“{w}”" for w in added))
    if dropped:
        parts.append("drops " + ", ".join(f"“{w}”" for w in dropped))
    return "; " + "; ".join(parts) if parts else ""


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
        cues = [
            s
            for s in ranked
            if s not in chosen and (_CHANGE_CUES.search(s.text) or _OLD_POSITION.search(s.text))
        ]
        kept.extend(chosen + [s for s in cues if s.relevance >= floor * 0.7][:4])
    return kept


def cluster_sentences(sentences: list[Sentence]) -> list[Cluster]:
    """Greedy single-pass clustering in order of relevance; clusters ranked by total relevance."""
    clusters: list[Cluster] = []
    for sentence in sorted(sentences, key=lambda s: -s.relevance):
        scores = [float(c.centroid @ sentence.vector) for c in clusters]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= CLAIM_SIMILARITY:
            cluster = clusters[best]
            cluster.members.append(sentence)
            centroid = np.mean([m.vector for m in cluster.members], axis=0)
            cluster.centroid = centroid / max(1e-9, float(np.linalg.norm(centroid)))
        else:
            clusters.append(Cluster(members=[sentence], centroid=sentence.vector))
    return sorted(clusters, key=lambda c: (-len(c.sources), -c.weight))


def _summary(sentences: list[Sentence]) -> list[Sentence]:
    if not sentences:
        return []
    vectors = np.stack([s.vector for s in sentences])
    weights = np.array([s.relevance for s in sentences], dtype=np.float32)
    picked = mmr_by_relevance(weights, vectors, SUMMARY_SENTENCES, 0.6)
    chosen = [sentences[i] for i in picked]
    return sorted(chosen, key=lambda s: (s.date is None, s.date or "", s.doc_id, s.start))


def _best_per_doc(cluster: Cluster, source: str) -> list[Sentence]:
    best: dict[str, Sentence] = {}
    for sentence in cluster.members:
        if sentence.source == source and (
            sentence.doc_id not in best or sentence.relevance > best[sentence.doc_id].relevance
        ):
            best[sentence.doc_id] = sentence
    return sorted(best.values(), key=lambda s: (s.date or "", s.start))[:2]


def _closest(sentence: Sentence, candidates: list[Sentence], minimum: float = 0.35) -> Sentence | None:
    scored = [(float(sentence.vector @ c.vector), c) for c in candidates]
    scored = [(score, c) for score, c in scored if score >= minimum]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def _source_excerpt(
    source: str, cluster: Cluster, request: AnalysisRequest
) -> tuple[Document, int, str] | None:
    """The retrieved passage of `source` closest to the claim: (document, offset, text of the excerpt)."""
    docs = request.retrieved.by_source.get(source, [])
    member = next(
        (s for s in sorted(cluster.members, key=lambda s: -s.relevance) if s.source == source), None
    )
    for evidence in docs:
        if member is not None and evidence.doc_id != member.doc_id:
            continue
        doc = request.documents.get(evidence.doc_id)
        if doc is None or not evidence.hits:
            continue
        start = min(h.char_start for h in evidence.hits)
        end = max(h.char_end for h in evidence.hits)
        return doc, start, doc.text[start:end]
    return None


def _position_by_similarity(
    cluster: Cluster, source: str, doc: Document, backend: OfflineBackend
) -> tuple[ClaimStanceLabel, Quote | None]:
    member = next((s for s in cluster.members if s.source == source), None)
    if member is None:
        return "unrelated", None
    return "discuss", backend._quote(doc, member.start, member.end)


@register_backend("offline")
def _offline(rest: str, settings: Settings, embedder: Embedder, api_key: str | None = None) -> Backend:
    return OfflineBackend(settings, embedder)
