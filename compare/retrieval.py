"""Balanced cross-source retrieval: every source gets its say, near-identical chunks do not crowd out the rest.

One Chroma query fetches a candidate pool with vectors; sources the pool under-represents get one more query
of their own; then maximal marginal relevance (MMR) picks k chunks per source, copies of a document count
once, and the result is grouped by document and ordered by date.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import BaseModel, Field

from compare.embedding import Embedder
from compare.store import Filters, Store
from compare.types import SearchHit

#: A top-up chunk may be this much less similar (cosine) than the weakest chunk of the pool.
TOP_UP_MARGIN = 0.1
#: Cosine under which a chunk is not about the question (all-MiniLM-L6-v2): no source is topped up with such
#: chunks, and a pool that already reaches below it needs no top-up. Calibrated on ../shared/corpus: asked each
#: event's question, every source covering the event has a chunk at 0.32 or more (median 0.6).
RELEVANT_FLOOR = 0.3


class DocumentEvidence(BaseModel):
    """Retrieved chunks of one document, in text order."""

    doc_id: str
    source: str
    outlet: str | None
    title: str | None
    date: str | None
    url: str | None
    hits: list[SearchHit]
    best_score: float


class RetrievalStats(BaseModel):
    candidates: int = 0
    queries: int = 0
    chunks_per_source: dict[str, int] = Field(default_factory=dict)
    documents_per_source: dict[str, int] = Field(default_factory=dict)
    sources_without_matches: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class Retrieved(BaseModel):
    question: str
    by_source: dict[str, list[DocumentEvidence]]
    stats: RetrievalStats

    @property
    def hits(self) -> list[SearchHit]:
        return [hit for docs in self.by_source.values() for doc in docs for hit in doc.hits]


@dataclass
class RetrievalSettings:
    k_per_source: int = 8
    mmr_lambda: float = 0.7
    min_score: float = 0.0
    filters: Filters = field(default_factory=Filters)


def mmr(query: np.ndarray, vectors: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Indices of k rows balancing relevance to the query against similarity to rows already picked."""
    if len(vectors) == 0:
        return []
    return mmr_by_relevance(vectors @ query, vectors, k, lambda_)


def mmr_by_relevance(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Maximal marginal relevance with the relevance of each row given (the query is implicit)."""
    if len(vectors) == 0:
        return []
    picked: list[int] = [int(np.argmax(relevance))]
    max_sim = vectors @ vectors[picked[0]]
    while len(picked) < min(k, len(vectors)):
        score = lambda_ * relevance - (1 - lambda_) * max_sim
        score[picked] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return picked


class Retriever:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def retrieve(self, question: str, settings: RetrievalSettings | None = None) -> Retrieved:
        started = time.perf_counter()
        config = settings or RetrievalSettings()
        vector = self.embedder.embed([question])[0]
        return self.retrieve_vector(question, vector, config, started)

    def retrieve_vector(
        self, question: str, vector: np.ndarray, config: RetrievalSettings, started: float | None = None
    ) -> Retrieved:
        started = started if started is not None else time.perf_counter()
        stats = RetrievalStats()
        sources = self.store.source_names(config.filters)
        if not sources:
            return Retrieved(question=question, by_source={}, stats=stats)
        pool = self._pool(vector, sources, config, stats)
        by_source: dict[str, list[DocumentEvidence]] = {}
        for source in sources:
            hits, vectors = pool.get(source, ([], np.zeros((0, 1), np.float32)))
            chosen = [hits[i] for i in mmr(vector, vectors, config.k_per_source, config.mmr_lambda)]
            chosen = [hit for hit in chosen if hit.score >= config.min_score]
            if not chosen:
                stats.sources_without_matches.append(source)
                continue
            by_source[source] = group_by_document(chosen)
            stats.chunks_per_source[source] = len(chosen)
            stats.documents_per_source[source] = len(by_source[source])
        stats.seconds = round(time.perf_counter() - started, 4)
        return Retrieved(question=question, by_source=by_source, stats=stats)

    def _pool(
        self, vector: np.ndarray, sources: Sequence[str], config: RetrievalSettings, stats: RetrievalStats
    ) -> dict[str, tuple[list[SearchHit], np.ndarray]]:
        """One query for k x sources chunks (as many as a bare top-k query: Chroma's time is the payload, not
        the search); a second, only for sources the pool left short of k although they hold relevant chunks
        (a terse outlet beside a wordy one). MMR then picks k per source among each source's candidates."""
        k = config.k_per_source
        size = k * max(1, len(sources))
        hits, vectors = self.store.query_chunks(vector, n=size, filters=config.filters, with_vectors=True)
        stats.queries += 1
        pool = _split_by_source(hits, vectors)
        weakest = min((hit.score for hit in hits), default=0.0)
        # No top-up when the filters matched fewer chunks than asked (the pool holds them all), or when the
        # pool already reaches down to irrelevant chunks: every chunk left out scores lower still.
        if len(hits) >= size and weakest > RELEVANT_FLOOR:
            totals = self.store.chunk_totals()
            short = [s for s in sources if len(pool.get(s, ([], None))[0]) < min(k, totals.get(s, k))]
            if short:
                self._top_up(pool, vector, short, config, stats)
        for source, (source_hits, source_vectors) in list(pool.items()):
            pool[source] = _collapse_copies(source_hits, source_vectors)
        stats.candidates = sum(len(h) for h, _ in pool.values())
        return pool

    def _top_up(
        self,
        pool: dict[str, tuple[list[SearchHit], np.ndarray]],
        vector: np.ndarray,
        short: Sequence[str],
        config: RetrievalSettings,
        stats: RetrievalStats,
    ) -> None:
        """Ids and scores first (cheap); the payload only for chunks nearly as relevant as the pool's weakest,
        so a terse but relevant source gets its say and an off-topic one costs almost nothing."""
        weakest = min((hit.score for hits, _ in pool.values() for hit in hits), default=0.0)
        floor = max(weakest - TOP_UP_MARGIN, RELEVANT_FLOOR)
        filters = replace(config.filters, sources=list(short))
        nearest = self.store.nearest_chunk_ids(vector, n=config.k_per_source * len(short), filters=filters)
        stats.queries += 1
        known = {hit.chunk_id for hits, _ in pool.values() for hit in hits}
        wanted = [
            (chunk_id, score) for chunk_id, score in nearest if score >= floor and chunk_id not in known
        ]
        if not wanted:
            return
        more_hits, more_vectors = self.store.get_chunks([c for c, _ in wanted], [s for _, s in wanted])
        for source, (source_hits, source_vectors) in _split_by_source(more_hits, more_vectors).items():
            old_hits, old_vectors = pool.get(source, ([], np.zeros((0, more_vectors.shape[1]), np.float32)))
            pool[source] = (old_hits + source_hits, np.concatenate([old_vectors, source_vectors]))


def _split_by_source(
    hits: list[SearchHit], vectors: np.ndarray | None
) -> dict[str, tuple[list[SearchHit], np.ndarray]]:
    grouped: dict[str, list[int]] = {}
    for index, hit in enumerate(hits):
        grouped.setdefault(hit.source, []).append(index)
    assert vectors is not None or not hits
    return {
        source: ([hits[i] for i in rows], vectors[rows] if vectors is not None else np.zeros((0, 1)))
        for source, rows in grouped.items()
    }


def _collapse_copies(hits: list[SearchHit], vectors: np.ndarray) -> tuple[list[SearchHit], np.ndarray]:
    """Within one source, a document and its copies count once: keep the best-scoring chunk of each span."""
    keep: list[int] = []
    seen: set[tuple[str, int, int]] = set()
    for index, hit in enumerate(hits):
        key = (hit.duplicate_of or hit.doc_id, hit.char_start, hit.char_end)
        if key not in seen:
            seen.add(key)
            keep.append(index)
    return [hits[i] for i in keep], vectors[keep]


def group_by_document(hits: list[SearchHit]) -> list[DocumentEvidence]:
    """Chunks grouped per document (in text order), documents ordered by date (undated last), then score."""
    docs: dict[str, list[SearchHit]] = {}
    for hit in hits:
        docs.setdefault(hit.doc_id, []).append(hit)
    evidence = [
        DocumentEvidence(
            doc_id=doc_id,
            source=doc_hits[0].source,
            outlet=doc_hits[0].outlet,
            title=doc_hits[0].title,
            date=doc_hits[0].date,
            url=doc_hits[0].url,
            hits=sorted(doc_hits, key=lambda h: h.char_start),
            best_score=max(h.score for h in doc_hits),
        )
        for doc_id, doc_hits in docs.items()
    ]
    return sorted(evidence, key=lambda d: (d.date is None, d.date or "", -d.best_score))
