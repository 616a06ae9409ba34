"""Store tests with deterministic vectors: no model needed, so they isolate Chroma behaviour."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compare.errors import StoreError
from compare.settings import Settings
from compare.store import Filters, Store
from compare.types import Chunk, Document

DIM = 8


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _doc(doc_id: str, source: str, date: str | None, text: str, **meta: object) -> Document:
    return Document(id=doc_id, source=source, date=date, text=text, metadata=meta, origin=f"{doc_id}.txt")


def _item(doc: Document, seed: int) -> tuple[Document, list[Chunk], np.ndarray]:
    half = len(doc.text) // 2
    chunks = [
        Chunk(doc_id=doc.id, index=0, char_start=0, char_end=half, text=doc.text[:half], n_tokens=5),
        Chunk(
            doc_id=doc.id, index=1, char_start=half, char_end=len(doc.text), text=doc.text[half:], n_tokens=5
        ),
    ]
    return doc, chunks, np.stack([_vec(seed), _vec(seed + 1000)])


@pytest.fixture
def store(settings: Settings) -> Store:
    s = Store(settings, embedder_name="fake", dim=DIM)
    s.write(
        [
            _item(
                _doc("a", "nyt", "2022-03-01", "Alpha text about sanctions. " * 4, event_id="e1", row=7), 1
            ),
            _item(_doc("b", "fox", "2023-01-15", "Bravo text about tanks. " * 4, event_id="e2"), 2),
            _item(_doc("c", "fox", None, "Charlie undated text here. " * 4, event_id="e1"), 3),
        ]
    )
    return s


def test_document_text_and_metadata_round_trip(store: Store) -> None:
    doc = store.get_document("a")
    assert doc is not None
    assert doc.text == "Alpha text about sanctions. " * 4
    assert doc.metadata == {"event_id": "e1", "row": 7}
    assert doc.date == "2022-03-01" and doc.source == "nyt"
    assert store.get_document("missing") is None


def test_search_hits_slice_the_stored_text(store: Store) -> None:
    hits = store.search(_vec(2), k=3)
    assert hits[0].doc_id == "b" and hits[0].score > 0.99
    for hit in hits:
        doc = store.get_document(hit.doc_id)
        assert doc is not None and doc.text[hit.char_start : hit.char_end] == hit.text


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(sources=["fox"]), {"b", "c"}),
        (Filters(since="2022-06-01"), {"b"}),
        (Filters(until="2022-12-31"), {"a"}),
        (Filters(where={"event_id": "e1"}), {"a", "c"}),
        (Filters(where={"row": "7"}), {"a"}),
        (Filters(sources=["fox"], where={"event_id": "e1"}), {"c"}),
    ],
)
def test_filters(store: Store, filters: Filters, expected: set[str]) -> None:
    hits = store.search(_vec(1), k=10, filters=filters)
    assert {hit.doc_id for hit in hits} == expected


def test_sources_summary_counts_duplicates_once(store: Store) -> None:
    dup = _doc("b-copy", "fox", "2023-01-16", "Bravo text about tanks. " * 4)
    dup.duplicate_of = "b"
    store.write([_item(dup, 2)])
    fox = next(s for s in store.sources() if s.source == "fox")
    assert (fox.documents, fox.duplicates, fox.undated) == (2, 1, 1)
    assert (fox.first_date, fox.last_date) == ("2023-01-15", "2023-01-16")
    # the copy's chunks do not crowd the results: one hit per distinct chunk
    assert [h.doc_id for h in store.search(_vec(2), k=2)].count("b-copy") + [
        h.doc_id for h in store.search(_vec(2), k=2)
    ].count("b") == 1


def test_replacing_a_document_removes_its_old_chunks(store: Store) -> None:
    new = _doc("a", "nyt", "2022-03-01", "A completely new version of alpha. " * 3)
    doc, chunks, vectors = _item(new, 50)
    store.write([(doc, chunks[:1], vectors[:1])], replacing=["a"])
    assert store.chunk_texts("a") == [(0, chunks[0].char_end, chunks[0].text)]
    assert store.stats()["chunks"] == 5


def test_delete_document_and_source(store: Store) -> None:
    assert store.delete_documents(["a", "nope"]) == 1
    assert store.get_document("a") is None and store.chunk_texts("a") == []
    assert store.delete_source("fox") == 2
    assert store.is_empty and store.stats()["chunks"] == 0


def test_refuses_to_mix_embedders(store: Store, settings: Settings) -> None:
    with pytest.raises(StoreError, match="refusing to mix") as info:
        Store(settings, embedder_name="other", dim=DIM)
    assert "--embedder fake" in (info.value.hint or "")
    reopened = Store(settings)  # read-only open learns the embedder from the store
    assert (reopened.embedder_name, reopened.dim) == ("fake", DIM)


def test_interrupted_write_is_rolled_back_on_open(store: Store, settings: Settings) -> None:
    """Simulates a crash after chunks were written but before the document record."""
    _, chunks, vectors = _item(_doc("d", "nyt", "2022-05-05", "Delta text. " * 6), 9)
    store.journal.begin(["d"])
    store._chunks.upsert(
        ids=[c.id for c in chunks], embeddings=vectors, documents=[c.text for c in chunks],
        metadatas=[{"doc_id": "d", "chunk_index": c.index, "source": "nyt"} for c in chunks],
    )  # fmt: skip
    reopened = Store(settings, embedder_name="fake", dim=DIM)
    assert reopened.chunk_texts("d") == []
    assert reopened.get_document("a") is not None  # committed documents untouched
    assert not store.journal.path.exists()


def test_opening_never_rolls_back_a_live_writers_window(store: Store, settings: Settings) -> None:
    """A reader opening the store mid-write (the journal lists documents, the write lock is held by a live
    process) leaves them alone; once the lock is free (the writer died), the next open rolls them back."""
    from filelock import FileLock

    store.journal.begin(["a"])
    writer = FileLock(store.journal.lock.lock_file)  # a second descriptor: conflicts like another process
    writer.acquire()
    try:
        reader = Store(settings)
        assert reader.get_document("a") is not None and store.journal.path.exists()
    finally:
        writer.release()
    Store(settings)
    assert store.get_document("a") is None and not store.journal.path.exists()


def test_two_writers_on_one_store_keep_every_document_findable(store: Store, settings: Settings) -> None:
    """Writes from two Store objects interleave; every document stays findable by a vector query. (Across
    processes, where a stale client would write its old vector index back, `make stress` checks it.)"""
    other = Store(settings, embedder_name="fake", dim=DIM)
    other.write([_item(_doc("d", "nyt", "2022-05-05", "Delta text about drones. " * 4), 9)])
    store.write([_item(_doc("e", "nyt", "2022-06-06", "Echo text about energy. " * 4), 11)])
    fresh = Store(settings)
    for doc_id, seed in (("a", 1), ("d", 9), ("e", 11)):
        found = fresh._chunks.query(query_embeddings=[_vec(seed)], n_results=1, where={"doc_id": doc_id})
        assert found["ids"][0], doc_id


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "store"
    target.write_text("not a directory")
    with pytest.raises(StoreError, match="is a file"):
        Store(Settings(data_dir=target))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_chroma_server_mode(tmp_path: Path) -> None:
    """The same store API against a real `chroma run` on loopback."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    server = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        settings = Settings(data_dir=tmp_path / "client", chroma_url=f"http://127.0.0.1:{port}")
        store = Store(settings, embedder_name="fake", dim=DIM)
        store.write([_item(_doc("s1", "nyt", "2022-01-01", "Server side text. " * 5, event_id="e9"), 4)])
        hits = store.search(_vec(4), k=1, filters=Filters(where={"event_id": "e9"}))
        assert hits and hits[0].doc_id == "s1"
        again = Store(settings)  # a second client sees the same data and embedder
        assert again.embedder_name == "fake" and again.get_document("s1") is not None
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chroma_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        Store(settings)


_WRITER = """
import sys
import numpy as np
from pathlib import Path
from compare.settings import Settings
from compare.store import Store
from compare.types import Chunk, Document
store = Store(Settings(data_dir=Path(sys.argv[1])), embedder_name="fake", dim=8)
text = "Delta text written by another process. " * 4
doc = Document(id="d", source="nyt", date="2024-05-05", text=text, origin="d.txt")
chunk = Chunk(doc_id="d", index=0, char_start=0, char_end=len(text), text=text, n_tokens=9)
vector = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
store.write([(doc, [chunk], vector)])
"""


def test_an_open_store_sees_another_process_writes(store: Store, settings: Settings) -> None:
    """An app holds the store open while `ncompare ingest` runs in a terminal: new chunks must be found."""
    probe = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    assert "d" not in {hit.doc_id for hit in store.search(probe, k=10)}
    subprocess.run([sys.executable, "-c", _WRITER, str(settings.data_dir)], check=True, timeout=120)
    time.sleep(1.1)  # the store re-reads the document count at most once a second
    assert "d" in store.source_names() or "nyt" in store.source_names()
    hits = store.search(probe, k=10)
    assert hits[0].doc_id == "d" and hits[0].score > 0.99
