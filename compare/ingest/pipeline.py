"""Ingest: read -> clean -> identify -> dedupe -> chunk -> embed -> store, streamed in windows.

Each window of documents is written in one store transaction (see store.Journal), so memory stays flat as
the input grows, a bad item never stops the good ones, and a killed run loses at most one window.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from compare.chunking import Chunker
from compare.embedding import Embedder
from compare.errors import IngestError, SkippedInput
from compare.ingest.cleaning import RepeatedLines, clean_text
from compare.ingest.normalize import to_document
from compare.ingest.readers import RawDocument, ReadOptions, iter_raw
from compare.settings import Settings
from compare.store import Store, StoredDoc, document_vector
from compare.types import Chunk, Document, IngestItemResult, IngestReport, IngestStatus

#: Documents per write transaction. Large enough that length-sorted embedding batches pad little (the
#: throughput of one big sorted batch), small enough that a killed run loses little and memory stays flat.
WINDOW_DOCS = 128
#: Two documents whose mean chunk vectors are at least this similar are compared word by word.
NEAR_DUPLICATE_COSINE = 0.9
_WORD = re.compile(r"\w+")

ProgressCallback = Callable[[IngestItemResult], None]


def make_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    """A chunker that respects both the tiktoken budget and the embedder's own token limit."""
    has_counter = embedder.count_tokens(["probe"]) is not None
    return Chunker(
        encoding=settings.chunk.encoding,
        max_tokens=settings.chunk.max_tokens,
        overlap_tokens=settings.chunk.overlap_tokens,
        model_counter=embedder.count_tokens if has_counter else None,  # type: ignore[arg-type]
        model_max_tokens=embedder.max_tokens,
    )


def shingles(text: str, size: int = 5) -> set[int]:
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + size])) for i in range(max(1, len(words) - size + 1))}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass
class _Pending:
    doc: Document
    status: str
    warnings: list[str]
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None


class Ingestor:
    """Runs the ingest pipeline against one store with one embedder."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.chunker = make_chunker(settings, embedder)
        self.repeated = RepeatedLines()
        self._seen: dict[str, tuple[str, str]] = {}
        self._hashes: dict[str, str] = {}

    def run(
        self, inputs: Sequence[str], options: ReadOptions, on_item: ProgressCallback | None = None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()

        def record(result: IngestItemResult) -> None:
            report.items.append(result)
            if on_item:
                on_item(result)

        window: list[RawDocument] = []
        for item in iter_raw(inputs, options):
            if isinstance(item, IngestError):
                record(_failed(item))
                continue
            window.append(item)
            if len(window) >= WINDOW_DOCS:
                self._process(window, record)
                window = []
        self._process(window, record)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _process(self, window: list[RawDocument], record: ProgressCallback) -> None:
        if not window:
            return
        for raw in window:
            self.repeated.observe(str(raw.fields.get("source") or ""), raw.text)
        pending = [p for raw in window if (p := self._prepare(raw, record)) is not None]
        # What is stored, the duplicate checks and the write see one state of the store: other processes
        # writing to it wait for this window (and this one for theirs).
        with self.store.write_window():
            stored = self.store.stored([p.doc.id for p in pending])
            by_hash = self.store.find_by_hashes([p.doc.content_hash for p in pending])
            to_write: list[_Pending] = []
            for item in pending:
                old = stored.get(item.doc.id)
                if old and old.content_hash == item.doc.content_hash:
                    record(_result(item.doc, "unchanged", item.warnings, duplicate_of=old.duplicate_of))
                    continue
                item.status = "replaced" if old else "added"
                self._mark_exact_duplicate(item.doc, by_hash.get(item.doc.content_hash))
                item.chunks = self.chunker.chunk(item.doc.id, item.doc.text)
                to_write.append(item)
            self._embed(to_write)
            self._mark_near_duplicates(to_write)
            self.store.write(
                [(p.doc, p.chunks, p.vectors) for p in to_write if p.vectors is not None],
                replacing=[p.doc.id for p in to_write if p.status == "replaced"],
            )
        for item in to_write:
            status = "duplicate" if item.doc.duplicate_of else item.status
            record(_result(item.doc, status, item.warnings, chunks=len(item.chunks)))

    def _prepare(self, raw: RawDocument, record: ProgressCallback) -> _Pending | None:
        source = str(raw.fields.get("source") or "")
        try:
            cleaned = clean_text(raw.text, repeated=self.repeated.furniture_for(source))
            doc = to_document(raw, cleaned.text, self.settings.ingest)
        except IngestError as exc:
            record(_failed(exc))
            return None
        first = self._seen.get(doc.id)
        if first is not None:
            if first[0] == doc.content_hash:
                record(_result(doc, "unchanged", ["repeated in this run"]))
                return None
            record(
                _failed(
                    IngestError(
                        doc.origin,
                        f"id {doc.id!r} was already given to a different text in this run (at {first[1]})",
                        hint="give each document its own id; to replace a document, ingest the new "
                        "version in a separate run",
                        line=None,
                    )
                )
            )
            return None
        self._seen[doc.id] = (doc.content_hash, doc.origin)
        warnings = list(raw.warnings)
        if not doc.date:
            warnings.append("no date: kept undated (pass --date or add `date` to its metadata)")
        return _Pending(doc=doc, status="added", warnings=warnings)

    def _mark_exact_duplicate(self, doc: Document, found: StoredDoc | None) -> None:
        """`found`: the stored document with the same text, if any (looked up for the whole window)."""
        original_id = self._hashes.get(doc.content_hash)
        if original_id is None and found is not None and found.id != doc.id:
            original_id = found.duplicate_of or found.id
        if original_id is not None and original_id != doc.id:
            doc.duplicate_of = original_id
        else:
            self._hashes.setdefault(doc.content_hash, doc.id)

    def _embed(self, items: list[_Pending]) -> None:
        texts = [chunk.text for item in items for chunk in item.chunks]
        if not texts:
            return
        vectors = self.embedder.embed(texts)
        offset = 0
        for item in items:
            item.vectors = vectors[offset : offset + len(item.chunks)]
            offset += len(item.chunks)

    def _mark_near_duplicates(self, items: list[_Pending]) -> None:
        """Syndicated copies: close document vectors, then word 5-shingle Jaccard above the threshold."""
        threshold = self.settings.ingest.near_duplicate_jaccard
        embedded = [item for item in items if item.vectors is not None and len(item.vectors)]
        vectors = [document_vector(item.vectors) for item in embedded if item.vectors is not None]
        nearest = self.store.nearest_documents_many(np.stack(vectors)) if vectors else []
        earlier: list[tuple[Document, np.ndarray]] = []
        for item, vector, stored in zip(embedded, vectors, nearest, strict=True):
            if item.doc.duplicate_of is None:
                item.doc.duplicate_of = self._near_duplicate(item.doc, vector, stored, earlier, threshold)
            earlier.append((item.doc, vector))

    def _near_duplicate(
        self,
        doc: Document,
        vector: np.ndarray,
        stored: list[tuple[str, float]],
        earlier: list[tuple[Document, np.ndarray]],
        threshold: float,
    ) -> str | None:
        candidates = [d for d, v in earlier if float(v @ vector) >= NEAR_DUPLICATE_COSINE]
        stored_ids = [doc_id for doc_id, sim in stored if sim >= NEAR_DUPLICATE_COSINE and doc_id != doc.id]
        candidates.extend(self.store.get_documents(stored_ids).values())
        mine = shingles(doc.text)
        for candidate in candidates:
            if candidate.id != doc.id and jaccard(mine, shingles(candidate.text)) >= threshold:
                return candidate.duplicate_of or candidate.id
        return None


def _failed(error: IngestError) -> IngestItemResult:
    origin = f"{error.origin}:{error.line}" if error.line is not None else error.origin
    status: IngestStatus = "skipped" if isinstance(error, SkippedInput) else "failed"
    return IngestItemResult(origin=origin, status=status, reason=error.reason, hint=error.hint)


def _result(
    doc: Document, status: str, warnings: list[str], *, chunks: int = 0, duplicate_of: str | None = None
) -> IngestItemResult:
    return IngestItemResult(
        origin=doc.origin,
        status=status,  # type: ignore[arg-type]
        doc_id=doc.id,
        chunks=chunks,
        duplicate_of=doc.duplicate_of or duplicate_of,
        warnings=warnings,
    )
