"""Comparison speed and prompt size, each against a baseline measured in the same run. Prints JSON.

    .venv/bin/python bench/compare.py [--corpus DIR] [--repeats N]

1. Retrieval: balanced per-source retrieval (pool query, top-up query, MMR, grouping) vs one bare Chroma query
   for the same vector and the same number of chunks. Target: ratio <= 1.5.
2. Offline comparison, warm (models loaded, store open), 3 sources x top-8 chunks (the AllSides left/center/right
   events): p50 latency vs the baseline of a bare retrieval plus one embedder call over the retrieved chunk
   texts (the least work any comparison must do). Target: p50 < 1 s.
3. LLM prompt tokens (counted with tiktoken, nothing sent): the map-reduce prompts vs stuffing every retrieved
   article whole into one prompt. Target: <= 40%.

The corpus (default ../shared/corpus, else examples/corpus) is ingested once into a temporary store.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compare.ingest.readers import ReadOptions  # noqa: E402
from compare.retrieval import RetrievalSettings, Retriever  # noqa: E402
from compare.services import Services  # noqa: E402
from compare.settings import Settings  # noqa: E402
from compare.store import Filters  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


def questions(corpus: Path) -> list[dict[str, Any]]:
    """One question per event: its label, filtered to the event."""
    rows = []
    for path in sorted(corpus.glob("*/events.jsonl")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            label = (
                event.get("label") or event.get("event_title") or event.get("main_event") or event["event_id"]
            )
            rows.append({"question": str(label), "event_id": event["event_id"], "corpus": path.parent.name})
    return rows


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def bench_retrieval(services: Services, items: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """Two workloads: the question asked of the whole corpus, and the same question filtered to its event."""
    return {
        "whole_corpus": _retrieval_ratio(services, items, repeats, per_event=False),
        "per_event": _retrieval_ratio(services, items, repeats, per_event=True),
        "target": "ratio <= 1.5",
    }


def _retrieval_ratio(
    services: Services, items: list[dict[str, Any]], repeats: int, *, per_event: bool
) -> dict[str, Any]:
    store, embedder = services.store, services.embedder
    retriever = Retriever(store, embedder)
    vectors = embedder.embed([item["question"] for item in items])
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        for item, vector in zip(items, vectors, strict=True):
            filters = Filters(where={"event_id": item["event_id"]}) if per_event else Filters()
            config = RetrievalSettings(k_per_source=8, filters=filters)
            n_sources = len(store.source_names(filters))
            started = time.perf_counter()
            store._chunks.query(  # the bare Chroma call: same vector, filter and number of chunks
                query_embeddings=[vector],
                n_results=config.k_per_source * n_sources,
                where=filters.to_chroma(),
                include=["documents", "metadatas", "distances"],
            )
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            retriever.retrieve_vector(item["question"], vector, config)
            ours.append(time.perf_counter() - started)
    return {
        "questions": len(items),
        "repeats": repeats,
        "balanced_p50_ms": ms(statistics.median(ours)),
        "bare_chroma_p50_ms": ms(statistics.median(bare)),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
    }


def bench_offline(services: Services, items: list[dict[str, Any]]) -> dict[str, Any]:
    engine, embedder = services.engine, services.embedder
    retriever = Retriever(services.store, embedder)
    three = [item for item in items if item["corpus"] == "basil"] or items  # 3 outlets, full-length articles
    engine.compare(three[0]["question"], filters=Filters(where={"event_id": three[0]["event_id"]}), k=8)
    latencies: list[float] = []
    baselines: list[float] = []
    sources_seen: list[int] = []
    for item in three:
        filters = Filters(where={"event_id": item["event_id"]})
        started = time.perf_counter()
        retrieved = retriever.retrieve(item["question"], RetrievalSettings(k_per_source=8, filters=filters))
        embedder.embed([hit.text for hit in retrieved.hits])
        baselines.append(time.perf_counter() - started)
        started = time.perf_counter()
        comparison = engine.compare(item["question"], filters=filters, k=8)
        latencies.append(time.perf_counter() - started)
        sources_seen.append(len(comparison.sources))
    p50 = statistics.median(latencies)
    repeat_started = time.perf_counter()
    engine.compare(three[0]["question"], filters=Filters(where={"event_id": three[0]["event_id"]}), k=8)
    return {
        "questions": len(three),
        "sources_per_question_p50": statistics.median(sources_seen),
        "p50_s": round(p50, 3),
        "p95_s": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
        "baseline_retrieve_and_embed_p50_s": round(statistics.median(baselines), 3),
        "ratio_vs_baseline": round(p50 / statistics.median(baselines), 2),
        "repeated_question_s": round(time.perf_counter() - repeat_started, 3),
        "target": "p50 < 1 s",
    }


def bench_prompt_tokens(services: Services, items: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        from compare.analysis.llm import prompt_token_comparison
    except ImportError as exc:
        return {"skipped": f"LLM backend not available: {exc}"}
    results: dict[str, Any] = {"target": "ratio <= 0.40"}
    for workload, per_event in (("per_event", True), ("whole_corpus", False)):
        ours = upper = stuffed = 0
        for item in items:
            filters = Filters(where={"event_id": item["event_id"]}) if per_event else Filters()
            request = services.engine.request(item["question"], filters=filters, k=8)
            counts = prompt_token_comparison(request, services.settings, embedder=services.engine.embedder)
            ours += int(counts["backend_prompt_tokens"])
            upper += int(counts.get("backend_prompt_tokens_upper_bound", counts["backend_prompt_tokens"]))
            stuffed += int(counts["stuffed_prompt_tokens"])
        results[workload] = {
            "questions": len(items),
            "backend_prompt_tokens": ours,
            "backend_prompt_tokens_upper_bound": upper,
            "stuffed_prompt_tokens": stuffed,
            "ratio": round(ours / max(1, stuffed), 3),
            "ratio_upper_bound": round(upper / max(1, stuffed), 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    corpus = args.corpus if args.corpus.exists() else REPO / "examples" / "corpus"
    items = questions(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        services = Services(settings)
        inputs = [str(p) for p in sorted(corpus.glob("*/articles.jsonl"))] or [str(corpus)]
        report = services.ingest(inputs, ReadOptions(settings=settings.ingest))
        if not items:
            items = [{"question": "How did the US position on Ukraine change?", "event_id": "", "corpus": ""}]
        results = {
            "corpus": str(corpus),
            "documents": report.count("added") + report.count("duplicate"),
            "retrieval": bench_retrieval(services, items, args.repeats),
            "offline_comparison": bench_offline(services, items),
            "llm_prompt_tokens": bench_prompt_tokens(services, items),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
