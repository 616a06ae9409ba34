"""Balanced retrieval on controlled vectors: a terse relevant source is not crowded out, noise is not padded in."""

from __future__ import annotations

import numpy as np

from compare.retrieval import RetrievalSettings, Retriever, mmr
from compare.settings import Settings
from compare.store import Store
from compare.types import Chunk, Document

DIM = 8
QUERY = np.eye(DIM, dtype=np.float32)[0]


def _towards(cosine: float, seed: int) -> np.ndarray:
    """A unit vector with the given cosine to QUERY, in a random direction otherwise."""
    rest = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    rest[0] = 0.0
    rest /= np.linalg.norm(rest)
    vector = cosine * QUERY + np.sqrt(1 - cosine**2) * rest
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _document(
    doc_id: str, source: str, cosines: list[float], seed: int
) -> tuple[Document, list[Chunk], np.ndarray]:
    sentences = [f"Sentence {i} of {doc_id} about the matter at hand. " for i in range(len(cosines))]
    text = "".join(sentences)
    chunks, start = [], 0
    for index, sentence in enumerate(sentences):
        chunks.append(
            Chunk(doc_id=doc_id, index=index, char_start=start, char_end=start + len(sentence), text=sentence,
                  n_tokens=10)
        )  # fmt: skip
        start += len(sentence)
    vectors = np.stack([_towards(c, seed + i) for i, c in enumerate(cosines)])
    return Document(id=doc_id, source=source, date="2024-01-01", text=text, origin=doc_id), chunks, vectors


def _store(settings: Settings) -> Store:
    store = Store(settings, embedder_name="fake", dim=DIM)
    store.write(
        [
            _document("wordy-1", "wordy", [0.95 - 0.001 * i for i in range(30)], 1),
            _document("terse-1", "terse", [0.86], 100),
            _document("noise-1", "noise", [0.02, 0.01], 200),
        ]
    )
    return store


def test_a_terse_relevant_source_gets_its_say_and_noise_does_not(settings: Settings) -> None:
    store = _store(settings)
    retrieved = Retriever(store, embedder=None).retrieve_vector(  # type: ignore[arg-type]
        "question", QUERY, RetrievalSettings(k_per_source=4)
    )
    assert set(retrieved.by_source) == {"wordy", "terse"}
    assert retrieved.stats.chunks_per_source == {"wordy": 4, "terse": 1}
    assert "noise" in retrieved.stats.sources_without_matches
    assert retrieved.stats.queries == 2  # the pool, then one top-up for the crowded-out source


def test_filters_that_match_few_chunks_need_one_query(settings: Settings) -> None:
    from compare.store import Filters

    store = _store(settings)
    config = RetrievalSettings(k_per_source=4, filters=Filters(sources=["terse", "noise"]))
    retrieved = Retriever(store, embedder=None).retrieve_vector("q", QUERY, config)  # type: ignore[arg-type]
    assert retrieved.stats.queries == 1 and set(retrieved.by_source) == {"terse", "noise"}


def test_mmr_prefers_a_different_chunk_over_a_near_copy() -> None:
    best = _towards(0.9, 1)
    near_copy = (best + 0.01 * _towards(0.0, 2)) / np.linalg.norm(best + 0.01 * _towards(0.0, 2))
    other = _towards(0.85, 3)
    picked = mmr(QUERY, np.stack([best, near_copy, other]), k=2, lambda_=0.7)
    assert picked == [0, 2]
