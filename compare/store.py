"""The vector store: Chroma, embedded (PersistentClient) or a server (HttpClient). The only chromadb import.

Two collections per store:
- `<prefix>_chunks`: one record per chunk (embedding, chunk text, document fields as metadata);
- `<prefix>_documents`: one record per document (its mean chunk embedding, the full clean text, metadata).
The documents collection is the commit record: a document is in the store once its record is written.
A small journal in the data dir lists documents being written, so a killed ingest is rolled back on
the next open and re-done by the next run, never leaving orphan or duplicate chunks.

Several processes may use one store at once. Every write window (journal written, chunks and document
records upserted, journal cleared) holds an OS file lock in the data dir, so writers take turns batch by
batch and their documents interleave safely. The journal is rolled back only by a process holding that lock:
a process that crashed mid-window released it when it died (the OS drops a dead process's locks), while a
live writer keeps it, so a reader opening the store never rolls back a write in progress. Opening the
embedded store (creating its files and collections) takes a second lock, so two first ingests into a fresh
data dir do not race to create the same tables.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from filelock import FileLock, Timeout

from compare.errors import ConfigError, StoreError
from compare.settings import Settings
from compare.types import Chunk, Document, MetadataValue, SearchHit, SourceSummary

SCHEMA_VERSION = 1
_DOC_FIELDS = ("source", "outlet", "title", "date", "url")
_RESERVED = frozenset(
    {*_DOC_FIELDS, "doc_id", "chunk_index", "char_start", "char_end", "date_int", "content_hash"}
    | {"duplicate_of", "n_chunks", "origin", "ingested_at", "n_tokens"}
)
_PAGE = 2000
#: How long a writer waits for another process's write window (one batch of an ingest) before giving up.
WRITE_WAIT_S = 600.0
#: How long opening waits for another process that is creating the same store.
OPEN_WAIT_S = 120.0


@dataclass(frozen=True)
class StoredDoc:
    """What the store knows about a document without loading its text."""

    id: str
    content_hash: str
    duplicate_of: str | None
    source: str


def _date_int(date: str | None) -> int:
    return int(date.replace("-", "")) if date else 0


def metadata_key(key: str) -> str:
    """User metadata keys that clash with the store's own fields are kept under a `meta_` prefix."""
    return f"meta_{key}" if key in _RESERVED else key


def _clean_meta(values: dict[str, MetadataValue | None]) -> dict[str, MetadataValue]:
    return {key: value for key, value in values.items() if value is not None}


def _document_metadata(doc: Document, n_chunks: int) -> dict[str, MetadataValue]:
    meta: dict[str, MetadataValue | None] = {metadata_key(k): v for k, v in doc.metadata.items()}
    meta.update({field: getattr(doc, field) for field in _DOC_FIELDS})
    meta.update(
        date_int=_date_int(doc.date),
        content_hash=doc.content_hash,
        duplicate_of=doc.duplicate_of or "",
        n_chunks=n_chunks,
        origin=doc.origin,
        ingested_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return _clean_meta(meta)


def _chunk_metadata(doc_meta: dict[str, MetadataValue], chunk: Chunk) -> dict[str, MetadataValue]:
    # Chroma stores each metadata key as a row: a chunk carries what filters and hits need, no more.
    meta = {k: v for k, v in doc_meta.items() if k not in _DOCUMENT_ONLY}
    meta.update(
        doc_id=chunk.doc_id, chunk_index=chunk.index, char_start=chunk.char_start, char_end=chunk.char_end
    )
    return meta


_DOCUMENT_ONLY = frozenset({"n_chunks", "origin", "ingested_at", "content_hash"})


def _parse_scalar(value: str) -> list[MetadataValue]:
    """`--where k=v` matches the string and, when it reads as one, the number or boolean. Only numbers Chroma
    accepts: NaN, infinity and integers beyond 64 bits make it refuse the whole filter."""
    candidates: list[MetadataValue] = [value]
    if value.lower() in ("true", "false"):
        candidates.append(value.lower() == "true")
        return candidates
    try:
        whole = int(value)
        if -(2**63) <= whole < 2**63:
            candidates.append(whole)
        return candidates
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return candidates
    if abs(number) < float("inf"):  # False for NaN too
        candidates.append(number)
    return candidates


@dataclass
class Filters:
    """Metadata filters shared by search, retrieval and corpus views."""

    sources: Sequence[str] = ()
    since: str | None = None
    until: str | None = None
    where: dict[str, str] | None = None
    include_duplicates: bool = True

    def to_chroma(self) -> dict[str, Any] | None:
        self.check()
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.since:
            clauses.append({"date_int": {"$gte": _date_int(self.since)}})
        if self.until:
            clauses.append({"date_int": {"$lte": _date_int(self.until)}})
        if self.since or self.until:
            clauses.append({"date_int": {"$gt": 0}})
        for key, raw in (self.where or {}).items():
            options = [{metadata_key(key): value} for value in _parse_scalar(raw)]
            clauses.append(options[0] if len(options) == 1 else {"$or": options})
        if not self.include_duplicates:
            clauses.append({"duplicate_of": ""})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def check(self) -> None:
        """A ConfigError for what Chroma would refuse or misread: a date that is not YYYY-MM-DD (dates compare
        as YYYYMMDD numbers), a metadata key that is empty or starts with `$` (an operator to Chroma)."""
        for name, day in (("since", self.since), ("until", self.until)):
            if day and not self._is_day(day):
                raise ConfigError(f"{name}: unreadable date {day!r} (use YYYY-MM-DD)", hint="e.g. 2022-10-01")
        for key in self.where or {}:
            if not key.strip() or key.startswith("$"):
                raise ConfigError(
                    f"where: {key!r} is not a metadata key",
                    hint="filter on a metadata field of the articles, e.g. event_id=us-gov-2022-10-10",
                )

    @staticmethod
    def _is_day(text: str) -> bool:
        digits = text[:4] + text[5:7] + text[8:]
        return len(text) == 10 and text[4] == text[7] == "-" and digits.isascii() and digits.isdigit()


class Journal:
    """Ids of documents whose write is in progress; survives a crash so the next open can roll back.
    `lock` is held for the whole write window by the process writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(path.with_name(path.name + ".lock")))

    def pending(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            return list(json.loads(self.path.read_text() or "[]"))
        except json.JSONDecodeError:
            return []

    def begin(self, doc_ids: Iterable[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(sorted(set(doc_ids))))
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        partial.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    @property
    def _generation_file(self) -> Path:
        return self.path.with_name("store-generation")

    def generation(self) -> int:
        """How many write windows the store has seen (any process); 0 for a store never written."""
        try:
            return int(self._generation_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def advance(self) -> int:
        """Count one more write window (call with the lock held)."""
        value = self.generation() + 1
        partial = self._generation_file.with_suffix(".tmp")
        partial.write_text(str(value))
        partial.replace(self._generation_file)
        return value


_QUERY_ATTEMPTS = 4
_MID_WRITE = ("error finding id", "hnsw segment", "nothing found on disk")


def _caught_mid_write(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _MID_WRITE)


def _writable_dir(path: Path) -> Path:
    """The data dir, created if missing; a clear error when it is a file or cannot be created."""
    if path.exists() and not path.is_dir():
        raise StoreError(
            f"the data dir {path} is a file, not a directory", hint="point --data-dir at a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the data dir {path}: {exc.strerror or exc}",
            hint="check the path and its permissions, or point --data-dir elsewhere",
        ) from exc
    return path


def _open_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        parsed = urlparse(settings.chroma_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(
                f"invalid --chroma-url {settings.chroma_url!r}",
                hint="use http://HOST:PORT of a server started with `chroma run --path DIR --port PORT`",
            )
        try:
            return chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:
            raise StoreError(
                f"cannot reach the Chroma server at {settings.chroma_url}: {exc}",
                hint="start one with `chroma run --path DIR --host 127.0.0.1 --port N`, or drop --chroma-url",
            ) from exc
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:
        raise StoreError(
            f"cannot open the store in {path}: {exc}",
            hint="check the directory is writable; use --data-dir to point at another store",
        ) from exc


class Store:
    """Documents and chunks with their embeddings. Records which embedder made them and refuses others."""

    def __init__(self, settings: Settings, *, embedder_name: str | None = None, dim: int | None = None):
        self.settings = settings
        self.journal = Journal(_writable_dir(settings.data_dir) / "ingest-journal.json")
        self._source_cache: dict[str, tuple[int, list[str]]] = {}
        self._chunk_totals: tuple[int, dict[str, int]] | None = None
        self._count_checked: tuple[float, int] | None = None
        with self._opening():
            self._client = _open_client(settings)
            prefix = settings.collection_prefix
            self.embedder_name, self.dim = self._check_embedder(prefix, embedder_name, dim)
            self._open_collections()
        self._recover_if_no_writer()
        self._generation = self.journal.generation()

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Creating the embedded store's files and collections, one process at a time."""
        lock = FileLock(str(self.settings.data_dir / "store-open.lock"))
        try:
            with lock.acquire(timeout=OPEN_WAIT_S):
                yield
        except Timeout as exc:
            raise StoreError(
                f"another process has been opening the store in {self.settings.data_dir} for {OPEN_WAIT_S:.0f} s",
                hint="wait for it to finish, or use another --data-dir",
            ) from exc

    @contextmanager
    def write_window(self) -> Iterator[None]:
        """Reads and writes that must see one state of the store (an ingest window: what is stored, the
        near-duplicate check, the write), one process at a time. Re-entrant."""
        with self._writing():
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write window at a time across processes. On entry, a crashed writer's window is rolled back
        and, if another process wrote since this one last looked, the client is reopened: an embedded
        Chroma client that kept its old vector index would otherwise write it back over theirs."""
        lock = self.journal.lock
        try:
            with lock.acquire(timeout=WRITE_WAIT_S):
                outermost = lock.lock_counter == 1
                if outermost:
                    self.recover()
                    if self.journal.generation() != self._generation:
                        self._reopen()
                try:
                    yield
                finally:
                    if outermost:
                        self._generation = self.journal.advance()
        except Timeout as exc:
            raise StoreError(
                f"another process has been writing to the store in {self.settings.data_dir} for "
                f"{WRITE_WAIT_S:.0f} s",
                hint="wait for that ingest or deletion to finish, then run this again",
            ) from exc

    def _recover_if_no_writer(self) -> None:
        """Roll back a crashed write, but only when no live process holds the write lock."""
        if not self.journal.path.exists():
            return
        try:
            with self.journal.lock.acquire(timeout=0):
                self.recover()
        except Timeout:
            return  # a live writer's window: its journal is not a crash

    def _open_collections(self) -> None:
        prefix = self.settings.collection_prefix
        meta = {"hnsw:space": "cosine", "embedder": self.embedder_name, "dim": self.dim}
        meta["schema"] = SCHEMA_VERSION
        self._chunks = self._collection(f"{prefix}_chunks", meta)
        self._docs = self._collection(f"{prefix}_documents", meta)

    def _reopen(self) -> None:
        """Another process wrote to this embedded store: an open Chroma client keeps serving its old vector
        index (queries miss new chunks or fail with "Error finding id"), so drop the cached client and
        open a fresh one. A Chroma server (--chroma-url) has no such cache."""
        if self.settings.chroma_url:
            return
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        with self._opening():
            self._client = _open_client(self.settings)
            self._open_collections()

    # -- opening -------------------------------------------------------------------------------------

    def _collection(self, name: str, metadata: dict[str, Any]) -> Any:
        try:
            return self._client.get_or_create_collection(name, metadata=metadata, embedding_function=None)
        except Exception as exc:
            raise StoreError(f"cannot open collection {name}: {exc}") from exc

    def _check_embedder(self, prefix: str, name: str | None, dim: int | None) -> tuple[str, int]:
        existing = self._existing_embedder(f"{prefix}_documents")
        if existing is None:
            if name is None or dim is None:
                return "", 0
            return name, dim
        stored_name, stored_dim = existing
        if name is not None and (name != stored_name or dim != stored_dim):
            raise StoreError(
                f"this store was built with embedder {stored_name!r} (dim {stored_dim}); "
                f"refusing to mix in vectors from {name!r} (dim {dim})",
                hint=f"use --embedder {stored_name}, or a fresh --data-dir / collection for {name}",
            )
        return stored_name, stored_dim

    def _existing_embedder(self, name: str) -> tuple[str, int] | None:
        try:
            collection = self._client.get_collection(name, embedding_function=None)
        except Exception:
            return None
        meta = collection.metadata or {}
        if not meta.get("embedder"):
            return None
        return str(meta["embedder"]), int(meta["dim"])

    @property
    def is_empty(self) -> bool:
        return bool(self._docs.count() == 0)

    # -- crash recovery --------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Roll back documents whose write a crash interrupted; the next ingest adds them again. Call with
        the write lock held (`_writing`, `_recover_if_no_writer`)."""
        pending = self.journal.pending()
        for doc_id in pending:
            self._chunks.delete(where={"doc_id": doc_id})
            self._docs.delete(ids=[doc_id])
        self.journal.clear()
        return pending

    # -- writing ---------------------------------------------------------------------------------------

    def write(
        self, items: Sequence[tuple[Document, list[Chunk], np.ndarray]], *, replacing: Iterable[str] = ()
    ) -> None:
        """Write documents with their chunks and chunk vectors; `replacing` ids lose their old chunks."""
        if not items:
            return
        with self._writing():
            self._write(items, replacing)
        self._after_own_write()

    def _write(
        self, items: Sequence[tuple[Document, list[Chunk], np.ndarray]], replacing: Iterable[str]
    ) -> None:
        self.journal.begin(doc.id for doc, _, _ in items)
        for doc_id in replacing:
            self._chunks.delete(where={"doc_id": doc_id})
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, MetadataValue]] = []
        vectors: list[np.ndarray] = []
        doc_vectors: list[np.ndarray] = []
        for doc, chunks, chunk_vectors in items:
            doc_meta = _document_metadata(doc, len(chunks))
            for chunk in chunks:
                ids.append(chunk.id)
                texts.append(chunk.text)
                metas.append(_chunk_metadata(doc_meta, chunk))
            vectors.append(chunk_vectors)
            doc_vectors.append(document_vector(chunk_vectors))
        all_vectors = np.concatenate(vectors)
        for start in range(0, len(ids), _PAGE):
            end = start + _PAGE
            self._chunks.upsert(
                ids=ids[start:end],
                embeddings=all_vectors[start:end],
                documents=texts[start:end],
                metadatas=metas[start:end],
            )
        self._docs.upsert(
            ids=[doc.id for doc, _, _ in items],
            embeddings=np.stack(doc_vectors),
            documents=[doc.text for doc, _, _ in items],
            metadatas=[_document_metadata(doc, len(chunks)) for doc, chunks, _ in items],
        )
        self.journal.clear()

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        with self._writing():
            found = self._docs.get(ids=list(doc_ids), include=[])["ids"]
            if not found:
                return 0
            self.journal.begin(found)
            for doc_id in found:
                self._chunks.delete(where={"doc_id": doc_id})
            self._docs.delete(ids=found)
            self.journal.clear()
        self._after_own_write()
        return len(found)

    def delete_source(self, source: str) -> int:
        ids = [doc.id for doc in self.iter_stored(Filters(sources=[source]))]
        return self.delete_documents(ids) if ids else 0

    # -- reading ---------------------------------------------------------------------------------------

    def stored(self, doc_ids: Sequence[str]) -> dict[str, StoredDoc]:
        if not doc_ids:
            return {}
        result = self._docs.get(ids=list(doc_ids), include=["metadatas"])
        return {doc_id: _stored(doc_id, meta) for doc_id, meta in zip(result["ids"], result["metadatas"])}

    def find_by_hashes(self, content_hashes: Sequence[str]) -> dict[str, StoredDoc]:
        """Stored documents by content hash, in one call (for a window of documents being ingested)."""
        if not content_hashes:
            return {}
        wanted = sorted(set(content_hashes))
        where = {"content_hash": {"$in": wanted}} if len(wanted) > 1 else {"content_hash": wanted[0]}
        result = self._docs.get(where=where, include=["metadatas"])
        found: dict[str, StoredDoc] = {}
        for doc_id, meta in zip(result["ids"], result["metadatas"]):
            found.setdefault(str(meta.get("content_hash", "")), _stored(doc_id, meta))
        return found

    def nearest_documents_many(self, vectors: np.ndarray, n: int = 3) -> list[list[tuple[str, float]]]:
        """For each document vector, the closest stored documents: one query for a whole window."""
        count = self._docs.count()
        if count == 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        result = self._vector_query(
            "_docs", query_embeddings=list(vectors), n_results=min(n, count), include=["distances"]
        )
        return [
            [(doc_id, 1.0 - dist) for doc_id, dist in zip(ids, distances)]
            for ids, distances in zip(result["ids"], result["distances"])
        ]

    def get_document(self, doc_id: str) -> Document | None:
        result = self._docs.get(ids=[doc_id], include=["documents", "metadatas"])
        if not result["ids"]:
            return None
        return _to_document(doc_id, result["documents"][0], result["metadatas"][0])

    def get_documents(self, doc_ids: Sequence[str]) -> dict[str, Document]:
        if not doc_ids:
            return {}
        result = self._docs.get(ids=list(doc_ids), include=["documents", "metadatas"])
        return {
            doc_id: _to_document(doc_id, text, meta)
            for doc_id, text, meta in zip(result["ids"], result["documents"], result["metadatas"])
        }

    def iter_stored(self, filters: Filters | None = None) -> Iterator[StoredDoc]:
        where = filters.to_chroma() if filters else None
        offset = 0
        while True:
            page = self._docs.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            for doc_id, meta in zip(page["ids"], page["metadatas"]):
                yield _stored(doc_id, meta)
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def document_metadata(self, filters: Filters | None = None) -> list[dict[str, Any]]:
        where = filters.to_chroma() if filters else None
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._docs.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            rows.extend({"id": i, **m} for i, m in zip(page["ids"], page["metadatas"]))
            if len(page["ids"]) < _PAGE:
                return rows
            offset += _PAGE

    def sources(self, filters: Filters | None = None) -> list[SourceSummary]:
        by_source: dict[str, list[dict[str, Any]]] = {}
        for row in self.document_metadata(filters):
            by_source.setdefault(str(row["source"]), []).append(row)
        return [_summarise(source, rows) for source, rows in sorted(by_source.items())]

    def source_names(self, filters: Filters | None = None) -> list[str]:
        """Sources with at least one document under `filters`. Cached per filter until the number of stored
        documents changes (count() is one cheap call; a full metadata scan per question is not)."""
        key = (repr(filters.to_chroma() if filters else None), self._document_count())
        cached = self._source_cache.get(key[0])
        if cached is None or cached[0] != key[1]:
            names = [summary.source for summary in self.sources(filters)]
            self._source_cache[key[0]] = (key[1], names)
            return names
        return cached[1]

    def _document_count(self) -> int:
        """The number of stored documents, re-read at most once a second: it versions the caches above, so
        another process's writes show within a second and this process's own writes at once."""
        now = time.monotonic()
        if self._count_checked is None or now - self._count_checked[0] > 1.0:
            generation = self.journal.generation()
            if generation != self._generation:  # another process wrote: see _reopen
                self._reopen()
                self._generation = generation
            count = int(self._docs.count())
            self._count_checked = (now, count)
        return self._count_checked[1]

    def _after_own_write(self) -> None:
        self._source_cache.clear()
        self._chunk_totals = None
        self._count_checked = None
        self._generation = self.journal.generation()

    def chunk_totals(self) -> dict[str, int]:
        """Stored chunks per source (copies excluded), cached like `source_names`."""
        count = self._document_count()
        if self._chunk_totals is None or self._chunk_totals[0] != count:
            totals: dict[str, int] = {}
            for row in self.document_metadata():
                if not row.get("duplicate_of"):
                    source = str(row["source"])
                    totals[source] = totals.get(source, 0) + int(row.get("n_chunks", 0))
            self._chunk_totals = (count, totals)
        return self._chunk_totals[1]

    def search(self, vector: np.ndarray, *, k: int = 8, filters: Filters | None = None) -> list[SearchHit]:
        """Top-k chunks by cosine similarity; copies of one document count once (the first one found)."""
        total = self._chunks.count()
        if total == 0:
            return []
        where = filters.to_chroma() if filters else None
        result = self._vector_query(
            "_chunks",
            query_embeddings=[vector],
            n_results=min(total, k * 3),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits: list[SearchHit] = []
        seen_text: set[tuple[str, int]] = set()
        for chunk_id, text, meta, dist in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
        ):
            canonical = str(meta.get("duplicate_of") or meta["doc_id"])
            key = (canonical, int(meta["chunk_index"]))
            if key in seen_text:
                continue
            seen_text.add(key)
            hits.append(_to_hit(chunk_id, text, meta, 1.0 - float(dist)))
            if len(hits) == k:
                break
        return hits

    def query_chunks(
        self, vector: np.ndarray, *, n: int, filters: Filters | None = None, with_vectors: bool = False
    ) -> tuple[list[SearchHit], np.ndarray | None]:
        """Raw nearest chunks (no duplicate collapsing), optionally with their vectors, for retrieval."""
        include = ["documents", "metadatas", "distances", *(["embeddings"] if with_vectors else [])]
        # No count() first: Chroma returns what there is when n exceeds it, and count() costs a round trip.
        result = self._vector_query(
            "_chunks",
            query_embeddings=[vector],
            n_results=max(1, n),
            where=filters.to_chroma() if filters else None,
            include=include,
        )
        hits = [
            _to_hit(chunk_id, text, meta, 1.0 - float(dist))
            for chunk_id, text, meta, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
            )
        ]
        vectors = np.asarray(result["embeddings"][0], dtype=np.float32) if with_vectors else None
        return hits, vectors

    def nearest_chunk_ids(
        self, vector: np.ndarray, *, n: int, filters: Filters | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the nearest chunks, without their payload: a cheap look."""
        result = self._vector_query(
            "_chunks",
            query_embeddings=[vector],
            n_results=max(1, n),
            where=filters.to_chroma() if filters else None,
            include=["distances"],
        )
        return [
            (chunk_id, 1.0 - float(dist)) for chunk_id, dist in zip(result["ids"][0], result["distances"][0])
        ]

    def get_chunks(
        self, chunk_ids: Sequence[str], scores: Sequence[float]
    ) -> tuple[list[SearchHit], np.ndarray]:
        """Chunks by id with their vectors, in the given order; `scores` are their similarities."""
        if not chunk_ids:
            return [], np.zeros((0, self.dim or 1), np.float32)
        result = self._chunks.get(ids=list(chunk_ids), include=["documents", "metadatas", "embeddings"])
        rows = {
            chunk_id: (text, meta, vector)
            for chunk_id, text, meta, vector in zip(
                result["ids"], result["documents"], result["metadatas"], result["embeddings"]
            )
        }
        kept = [(chunk_id, score) for chunk_id, score in zip(chunk_ids, scores) if chunk_id in rows]
        hits = [_to_hit(cid, rows[cid][0], rows[cid][1], score) for cid, score in kept]
        vectors = np.asarray([rows[cid][2] for cid, _ in kept], dtype=np.float32)
        return hits, vectors

    def _vector_query(self, collection: str, **query: Any) -> Any:
        """A vector query that survives another process writing meanwhile: an embedded client's index can
        be caught between that writer's vector index and its records ("Error finding id", an hnsw segment
        not yet on disk); the client is reopened and the query retried, then a clear error."""
        for attempt in range(_QUERY_ATTEMPTS):
            try:
                return getattr(self, collection).query(**query)
            except Exception as exc:  # chromadb raises its own (Rust-side) error types
                if self.settings.chroma_url or not _caught_mid_write(exc):
                    raise
                if attempt == _QUERY_ATTEMPTS - 1:
                    raise StoreError(
                        "the store's vector index could not be read while another process writes to it",
                        hint="try again when that ingest has finished",
                    ) from exc
                time.sleep(0.25 * (attempt + 1))
                self._reopen()
        raise AssertionError("unreachable")

    def stats(self) -> dict[str, Any]:
        sources = self.sources()
        return {
            "documents": sum(s.documents for s in sources),
            "duplicates": sum(s.duplicates for s in sources),
            "chunks": int(self._chunks.count()),
            "sources": len(sources),
            "embedder": self.embedder_name or None,
            "dim": self.dim or None,
            "store": self.settings.chroma_url or str(self.settings.data_dir / "chroma"),
            "schema": SCHEMA_VERSION,
        }

    def chunk_texts(self, doc_id: str) -> list[tuple[int, int, str]]:
        result = self._chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        rows = [
            (int(meta["char_start"]), int(meta["char_end"]), text)
            for text, meta in zip(result["documents"], result["metadatas"])
        ]
        return sorted(rows)


def document_vector(chunk_vectors: np.ndarray) -> np.ndarray:
    """A document's vector: the normalised mean of its chunk vectors."""
    mean = chunk_vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def _stored(doc_id: str, meta: dict[str, Any]) -> StoredDoc:
    return StoredDoc(
        id=doc_id,
        content_hash=str(meta.get("content_hash", "")),
        duplicate_of=str(meta.get("duplicate_of") or "") or None,
        source=str(meta.get("source", "")),
    )


def user_metadata(meta: dict[str, Any]) -> dict[str, MetadataValue]:
    """The user's own metadata fields of a stored record (the store's fields left out, `meta_` undone)."""
    user = {key: value for key, value in meta.items() if key not in _RESERVED}
    return {
        key.removeprefix("meta_") if key.startswith("meta_") else key: value for key, value in user.items()
    }


def _to_document(doc_id: str, text: str, meta: dict[str, Any]) -> Document:
    return Document(
        id=doc_id,
        source=str(meta["source"]),
        outlet=meta.get("outlet"),
        title=meta.get("title"),
        date=meta.get("date"),
        url=meta.get("url"),
        text=text,
        metadata=user_metadata(meta),
        duplicate_of=str(meta.get("duplicate_of") or "") or None,
        origin=str(meta.get("origin", "")),
    )


def _to_hit(chunk_id: str, text: str, meta: dict[str, Any], score: float) -> SearchHit:
    # model_construct: the values are typed right here and come from our own store; validating each of
    # hundreds of hits per question was a visible share of retrieval time.
    return SearchHit.model_construct(
        chunk_id=chunk_id,
        doc_id=str(meta["doc_id"]),
        source=str(meta["source"]),
        outlet=meta.get("outlet"),
        title=meta.get("title"),
        date=meta.get("date"),
        url=meta.get("url"),
        char_start=int(meta["char_start"]),
        char_end=int(meta["char_end"]),
        text=text,
        score=round(score, 6),
        duplicate_of=str(meta.get("duplicate_of") or "") or None,
    )


def _summarise(source: str, rows: list[dict[str, Any]]) -> SourceSummary:
    dates = sorted(str(row["date"]) for row in rows if row.get("date"))
    outlets = [str(row["outlet"]) for row in rows if row.get("outlet")]
    duplicates = sum(1 for row in rows if row.get("duplicate_of"))
    return SourceSummary(
        source=source,
        outlet=outlets[0] if outlets else None,
        documents=len(rows) - duplicates,
        duplicates=duplicates,
        undated=sum(1 for row in rows if not row.get("date")),
        first_date=dates[0] if dates else None,
        last_date=dates[-1] if dates else None,
    )
