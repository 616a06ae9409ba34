"""Past questions and their results, kept in the data dir (SQLite) so they can be listed, reopened, deleted.

One row per comparison: a few columns to list it quickly and the whole Comparison as JSON to reopen it
exactly as it was shown. Nothing secret is stored: a comparison holds no API key, and credentials or query
strings in an `openai-compatible:MODEL@URL` backend string are removed before saving.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from compare.errors import StoreError
from compare.redact import redact
from compare.types import Comparison

FILENAME = "history.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    question TEXT NOT NULL,
    backend TEXT NOT NULL,
    sources TEXT NOT NULL,
    filters TEXT NOT NULL,
    comparison TEXT NOT NULL
)
"""
_URL_USERINFO = re.compile(r"(https?://)[^/@\s]*@", re.IGNORECASE)
_URL_QUERY = re.compile(r"(https?://[^\s?#]*)[?#]\S*", re.IGNORECASE)


def redact_backend(spec: str) -> str:
    """A backend string without URL credentials or query strings (where a key might hide)."""
    return redact(_URL_QUERY.sub(r"\1", _URL_USERINFO.sub(r"\1", spec)))


@dataclass(frozen=True)
class HistoryEntry:
    """What a history list shows; `History.get(id)` returns the full Comparison."""

    id: str
    created_at: str
    question: str
    backend: str
    sources: list[str]
    filters: dict[str, object]


class History:
    """Comparisons saved under `<data_dir>/history.sqlite`; safe to use from several threads or processes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILENAME

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=10)) as conn, conn:
                conn.execute(SCHEMA)
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(
                f"the history file {self.path} cannot be used: {exc}",
                hint="check the data dir's permissions, or move the file away to start a new history",
            ) from exc

    def add(self, comparison: Comparison) -> HistoryEntry:
        """Save a comparison (with a redacted backend string) and return its entry."""
        saved = comparison.model_copy(deep=True)
        saved.meta.backend = redact_backend(saved.meta.backend)
        created = saved.meta.created_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        entry = HistoryEntry(
            id=f"{created.replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:8]}",
            created_at=created,
            question=saved.question,
            backend=saved.meta.backend,
            sources=[view.source for view in saved.sources],
            filters=dict(saved.filters),
        )
        with self._db() as conn:
            conn.execute(
                "INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.created_at,
                    entry.question,
                    entry.backend,
                    json.dumps(entry.sources),
                    json.dumps(entry.filters, default=str),
                    redact(saved.model_dump_json()),
                ),
            )
        return entry

    def entries(self, limit: int = 200, *, contains: str | None = None) -> list[HistoryEntry]:
        """Newest first; `contains` keeps questions containing that text (case-insensitive)."""
        if not self.path.exists():
            return []
        query = "SELECT id, created_at, question, backend, sources, filters FROM comparisons"
        params: list[object] = []
        if contains:
            query += " WHERE instr(lower(question), lower(?)) > 0"
            params.append(contains)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        with self._db() as conn:
            rows = conn.execute(query, params).fetchall()
        return [_entry(row) for row in rows]

    def get(self, entry_id: str) -> Comparison | None:
        """The saved comparison, or None if there is no such entry."""
        if not self.path.exists():
            return None
        with self._db() as conn:
            row = conn.execute("SELECT comparison FROM comparisons WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            return None
        try:
            return Comparison.model_validate_json(row[0])
        except ValidationError as exc:
            raise StoreError(
                f"history entry {entry_id} cannot be read ({exc.error_count()} field errors)",
                hint="it was probably saved by another version; delete it and ask the question again",
            ) from exc

    def delete(self, entry_id: str) -> bool:
        if not self.path.exists():
            return False
        with self._db() as conn:
            return conn.execute("DELETE FROM comparisons WHERE id = ?", (entry_id,)).rowcount > 0

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        if not self.path.exists():
            return 0
        with self._db() as conn:
            return int(conn.execute("DELETE FROM comparisons").rowcount)

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self._db() as conn:
            return int(conn.execute("SELECT count(*) FROM comparisons").fetchone()[0])


def _entry(row: tuple[str, str, str, str, str, str]) -> HistoryEntry:
    entry_id, created_at, question, backend, sources, filters = row
    return HistoryEntry(entry_id, created_at, question, backend, json.loads(sources), json.loads(filters))
