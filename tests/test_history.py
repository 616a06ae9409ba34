"""compare.history: comparisons saved in the data dir, listed newest first, reopened exactly, deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from compare.errors import StoreError
from compare.history import History, redact_backend
from tests.test_render import make_comparison


def test_add_list_get_delete(tmp_path: Path) -> None:
    history = History(tmp_path / "data")
    assert history.entries() == [] and history.get("nope") is None and len(history) == 0
    first = make_comparison()
    second = make_comparison()
    second.question = "A later question"
    second.meta.created_at = "2026-02-01T00:00:00Z"
    a, b = history.add(first), history.add(second)
    assert [e.id for e in history.entries()] == [b.id, a.id]  # newest first
    assert b.sources == ["paper<b>", "ministry"] and b.backend == "offline"
    assert history.get(a.id) == first  # reopened exactly as it was shown
    assert [e.id for e in history.entries(contains="LATER")] == [b.id]
    assert History(tmp_path / "data").entries()[0].id == b.id  # another instance (or process) sees it
    assert history.delete(a.id) and not history.delete(a.id)
    assert len(history) == 1 and history.clear() == 1 and history.entries() == []


def test_backend_credentials_are_not_saved(tmp_path: Path) -> None:
    comparison = make_comparison()
    comparison.meta.backend = "openai-compatible:llama@https://user:sk-secret@host.example/v1?api_key=sk-q"
    entry = History(tmp_path).add(comparison)
    assert entry.backend == "openai-compatible:llama@https://host.example/v1"
    assert b"sk-secret" not in (tmp_path / "history.sqlite").read_bytes()
    assert b"sk-q" not in (tmp_path / "history.sqlite").read_bytes()
    assert comparison.meta.backend.endswith("api_key=sk-q")  # the caller's object is left alone


def test_redact_backend_leaves_plain_specs_alone() -> None:
    for spec in ("offline", "openai:gpt-4o-mini", "openai-compatible:qwen@http://127.0.0.1:8080/v1"):
        assert redact_backend(spec) == spec


def test_an_unreadable_entry_is_a_clear_error(tmp_path: Path) -> None:
    history = History(tmp_path)
    entry = history.add(make_comparison())
    with sqlite3.connect(history.path) as conn:
        conn.execute("UPDATE comparisons SET comparison = ? WHERE id = ?", ('{"question": 1}', entry.id))
    with pytest.raises(StoreError, match="cannot be read") as info:
        history.get(entry.id)
    assert info.value.hint and "delete it" in info.value.hint
    assert history.delete(entry.id)


def test_a_broken_history_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="history file"):
        History(tmp_path).entries()
