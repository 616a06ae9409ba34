"""Whole folders as users point at them: corpus READMEs, metadata files and source-less documents."""

from __future__ import annotations

import json
from pathlib import Path

from compare.errors import IngestError, SkippedInput
from compare.ingest.readers import RawDocument, ReadOptions, iter_raw

ARTICLE = "The ministry said on Tuesday that the new package would be delivered within weeks. " * 5


def _corpus(root: Path) -> Path:
    (root / "outlet_a").mkdir(parents=True)
    (root / "README.md").write_text("# About this corpus\n\nDescribes the files; it is not an article.\n")
    (root / "outlet_a" / "LICENSE.txt").write_text("Research use only. " * 20)
    (root / "outlet_a" / "story.txt").write_text(ARTICLE)
    (root / "outlet_a" / "articles.jsonl").write_text(
        json.dumps({"id": "j1", "source": "own", "text": ARTICLE})
    )
    events = [{"event_id": f"e{i}", "label": "x", "article_ids": []} for i in range(500)]
    (root / "outlet_a" / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return root


def test_folder_walk_skips_corpus_docs_and_names_metadata_files_once(tmp_path: Path) -> None:
    items = list(iter_raw([str(_corpus(tmp_path / "corpus"))], ReadOptions()))
    docs = [item for item in items if isinstance(item, RawDocument)]
    errors = [item for item in items if isinstance(item, IngestError)]
    assert sorted(Path(d.origin.split(":")[0]).name for d in docs) == ["articles.jsonl", "story.txt"]
    assert len(errors) == 1, [str(e) for e in errors]  # 500 event lines -> one error for the file
    assert (
        errors[0].origin.endswith("events.jsonl")
        and "does not look like a file of articles" in errors[0].reason
    )
    assert isinstance(errors[0], SkippedInput)  # met in a folder: skipped, not a failure


def test_a_named_metadata_file_is_a_failure_not_a_skip(tmp_path: Path) -> None:
    events = _corpus(tmp_path / "corpus") / "outlet_a" / "events.jsonl"
    (error,) = list(iter_raw([str(events)], ReadOptions()))
    assert isinstance(error, IngestError) and not isinstance(error, SkippedInput)


def test_source_falls_back_to_folder_name_with_a_warning(tmp_path: Path) -> None:
    docs = [
        i for i in iter_raw([str(_corpus(tmp_path / "corpus"))], ReadOptions()) if isinstance(i, RawDocument)
    ]
    by_name = {Path(d.origin.split(":")[0]).name: d for d in docs}
    assert by_name["story.txt"].fields["source"] == "outlet_a"
    assert "folder name" in by_name["story.txt"].warnings[0]
    assert by_name["articles.jsonl"].fields["source"] == "own" and not by_name["articles.jsonl"].warnings


def test_a_named_file_without_source_is_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text(ARTICLE)
    (doc,) = list(iter_raw([str(path)], ReadOptions()))
    assert isinstance(doc, RawDocument) and "source" not in doc.fields
