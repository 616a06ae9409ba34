"""The LLM response cache and log: one SQLite file in the data dir, one row per answered call.

A row is keyed by everything that determines the answer: model, base URL, prompt id@version and part, the
exact rendered messages, the structured-output method and schema, temperature and output budget. A repeated
question therefore sends nothing. Rows keep the messages and the validated answer, so the file doubles as a
history of what was asked and answered. The cache is an optimisation: a locked or damaged file is reported
as a warning and the call goes to the model.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.redact import redact

CACHE_FILE = "llm-cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    base_url TEXT,
    prompt TEXT NOT NULL,
    part TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CachedResponse:
    response: str
    tokens_in: int
    tokens_out: int
    created_at: str


def cache_key(**parts: Any) -> str:
    """sha256 of the parts as canonical JSON: any change in any part is another key."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class ResponseCache:
    path: Path
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str) -> CachedResponse | None:
        if not self.path.exists():
            return None
        row = self._run(
            "SELECT response, tokens_in, tokens_out, created_at FROM responses WHERE key = ?", (key,)
        )
        return CachedResponse(*row) if row else None

    def put(
        self,
        key: str,
        *,
        model: str,
        base_url: str | None,
        prompt: str,
        part: str,
        request: object,
        response: str,
        tokens_in: int,
        tokens_out: int,
    ) -> None:
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # Stored redacted: the cache file outlives the session and may be shared (compare/redact.py).
        request_json = redact(json.dumps(request, ensure_ascii=False))
        url = redact(base_url) if base_url else base_url
        values = (
            key,
            model,
            url,
            prompt,
            part,
            request_json,
            redact(response),
            tokens_in,
            tokens_out,
            created,
        )
        self._run(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values, write=True
        )

    def count(self) -> int:
        if not self.path.exists():
            return 0
        row = self._run("SELECT COUNT(*) FROM responses", ())
        return int(row[0]) if row else 0

    def _run(self, sql: str, params: tuple[object, ...], *, write: bool = False) -> tuple[Any, ...] | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
                db.execute(_SCHEMA)
                row = db.execute(sql, params).fetchone()
                return None if write else row
        except (sqlite3.Error, OSError) as error:
            note = f"LLM response cache {self.path} unusable ({error}); calls go to the model"
            if note not in self.warnings:
                self.warnings.append(note)
            return None
