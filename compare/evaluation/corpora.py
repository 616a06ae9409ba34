"""One store per eval corpus, built once and reused: keyed by the corpus content and everything that shapes
the store (embedder, chunking and ingest settings), so two corpora never share a store and a changed corpus
or setting gets a new one.

Layout: <root>/<key>/ is an ordinary data dir (chroma/, the ingest journal, the LLM response cache) plus
`eval-corpus.json`, written when the ingest completed. A run killed mid-ingest leaves no marker; the next run
ingests again and the store's own bookkeeping skips what was already stored.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.embedding import Embedder
from compare.errors import ConfigError
from compare.evaluation.datasets import Case, Dataset
from compare.ingest.pipeline import Ingestor
from compare.ingest.readers import ReadOptions
from compare.settings import Settings
from compare.store import Store
from compare.types import Document

MARKER = "eval-corpus.json"
INLINE_FILE = "inline-documents.jsonl"


@dataclass
class CorpusStore:
    key: str
    origin: str
    settings: Settings
    store: Store
    documents: int
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def get_documents(self, doc_ids: list[str]) -> dict[str, Document]:
        return self.store.get_documents(sorted(set(doc_ids))) if doc_ids else {}


def _inline_jsonl(documents: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in documents).encode()


class CorpusStores:
    """Builds (or reopens) the store of each case's corpus under `root`, sharing one loaded embedder."""

    def __init__(self, settings: Settings, embedder: Embedder, root: Path) -> None:
        self.settings = settings
        self.embedder = embedder
        self.root = root
        self._open: dict[str, CorpusStore] = {}

    def shape(self) -> dict[str, Any]:
        """Everything besides the corpus bytes that changes what is stored."""
        return {
            "embedder": self.embedder.name,
            "chunk": self.settings.chunk.model_dump(mode="json"),
            "ingest": self.settings.ingest.model_dump(mode="json"),
        }

    def for_case(self, dataset: Dataset, case: Case) -> CorpusStore:
        corpus = dataset.corpus_path(case)
        content = corpus.read_bytes() if corpus is not None else _inline_jsonl(case.inputs.documents or [])
        origin = (
            str(corpus) if corpus is not None else f"{dataset.path}: case {case.name!r} (inline documents)"
        )
        blob = content + json.dumps(self.shape(), sort_keys=True).encode()
        key = hashlib.sha256(blob).hexdigest()[:16]
        if key not in self._open:
            self._open[key] = self._build(key, origin, corpus, content)
        return self._open[key]

    def _build(self, key: str, origin: str, corpus: Path | None, content: bytes) -> CorpusStore:
        data_dir = self.root / key
        settings = self.settings.model_copy(update={"data_dir": data_dir, "chroma_url": None})
        store = Store(settings, embedder_name=self.embedder.name, dim=self.embedder.dim)
        marker = data_dir / MARKER
        if marker.is_file():
            record = json.loads(marker.read_text(encoding="utf-8"))
            return CorpusStore(key, origin, settings, store, record["documents"], record.get("warnings", []))
        started = time.perf_counter()
        if corpus is None:
            corpus = data_dir / INLINE_FILE
            corpus.write_bytes(content)
        report = Ingestor(settings, store, self.embedder).run(
            [str(corpus)], ReadOptions(format="jsonl", settings=settings.ingest)
        )
        stored = sum(
            1 for item in report.items if item.status in ("added", "unchanged", "replaced", "duplicate")
        )
        if not stored:
            reasons = "; ".join(f"{i.origin}: {i.reason}" for i in report.failed[:3])
            raise ConfigError(
                f"corpus {origin}: no document could be stored ({reasons})",
                hint="check the JSONL against the corpus schema (id, source, date, text)",
            )
        warnings = [f"not stored: {item.origin}: {item.reason}" for item in report.failed]
        seconds = round(time.perf_counter() - started, 2)
        record = {
            "key": key,
            "origin": origin,
            "documents": stored,
            "warnings": warnings,
            "seconds": seconds,
            "shape": self.shape(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        marker.write_text(json.dumps(record, indent=2), encoding="utf-8")
        return CorpusStore(key, origin, settings, store, stored, warnings, seconds)
