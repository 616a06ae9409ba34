"""Ingest throughput vs the raw embedder on the same chunk texts, measured in the same run.

    .venv/bin/python bench/ingest.py [--quick] [--corpus DIR] [--synthetic-chunks N]

Each phase runs in its own process so peak memory (ru_maxrss) is per phase: the real corpus, then a synthetic
scale-up (documents stitched from random paragraphs of the corpus, so none is a duplicate). Prints JSON.
Target: ingest chunks/s >= 0.85 x raw embedder chunks/s; memory flat when the input grows.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "corpus"
sys.path.insert(0, str(REPO))

from memory import peak_rss_mb  # noqa: E402 - bench/memory.py, beside this script


def corpus_inputs(corpus: Path) -> list[str]:
    inputs = [str(p) for p in sorted(corpus.glob("*/articles.jsonl"))]
    inputs.append(str(REPO / "examples" / "corpus" / "seeds"))  # the seeds, with their sidecar metadata
    return inputs


def synthetic_jsonl(corpus: Path, target_chunks: int, out: Path, shards: int = 6) -> list[str]:
    paragraphs: list[str] = []
    for path in sorted(corpus.glob("*/articles.jsonl")):
        for line in path.read_text().splitlines():
            text = json.loads(line)["text"]
            paragraphs.extend(p.strip() for p in text.split("\n") if len(p.strip()) > 200)
    rng = random.Random(7)
    n_docs = max(1, target_chunks // 3)  # a stitched document makes ~3.5 chunks
    paths = [out.with_name(f"{out.stem}-{shard}.jsonl") for shard in range(shards)]
    handles = [path.open("w") for path in paths]
    for i in range(n_docs):
        body = "\n\n".join(rng.sample(paragraphs, k=min(len(paragraphs), rng.randint(5, 9))))
        date = f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        record = {"id": f"syn-{i}", "source": f"outlet-{i % 7}", "date": date, "text": body}
        handles[i * shards // n_docs].write(json.dumps(record) + "\n")
    for handle in handles:
        handle.close()
    return [str(path) for path in paths]


def run_phase(inputs: list[str], data_dir: str) -> dict[str, object]:
    """Ingest the inputs one after another; after each, embed that input's chunk texts with the raw embedder.
    Interleaving the two keeps them under the same machine load, so the ratio survives a noisy machine."""
    from compare.chunking import get_encoding
    from compare.ingest.readers import ReadOptions
    from compare.services import Services
    from compare.settings import Settings

    settings = Settings(data_dir=Path(data_dir))
    services = Services(settings)
    services.store  # noqa: B018 - load model and open the store outside the timings
    services.embedder.embed(["warm up the session"] * 8)
    ingest_s = raw_s = ingest_cpu = raw_cpu = 0.0
    documents = failed = chunks = tokens = 0
    for item in inputs:
        started, cpu = time.perf_counter(), time.process_time()
        report = services.ingest([item], ReadOptions(source="bench", settings=settings.ingest))
        ingest_s += time.perf_counter() - started
        ingest_cpu += time.process_time() - cpu
        texts = [
            text
            for result in report.items
            if result.doc_id and result.chunks
            for _, _, text in services.store.chunk_texts(result.doc_id)
        ]
        started, cpu = time.perf_counter(), time.process_time()
        services.embedder.embed(texts)
        raw_s += time.perf_counter() - started
        raw_cpu += time.process_time() - cpu
        documents += sum(1 for i in report.items if i.status not in ("failed", "skipped"))
        failed += sum(1 for i in report.items if i.status == "failed")
        chunks += len(texts)
        tokens += sum(len(t) for t in get_encoding("cl100k_base").encode_ordinary_batch(texts))
    return {
        "documents": documents,
        "failed": failed,
        "chunks": chunks,
        "seconds": round(ingest_s, 2),
        "chunks_per_s": round(chunks / ingest_s, 2),
        "tokens_per_s": round(tokens / ingest_s, 1),
        "raw_embedder_seconds": round(raw_s, 2),
        "raw_embedder_chunks_per_s": round(chunks / raw_s, 2),
        "ratio_ingest_vs_raw": round(raw_s / ingest_s, 3),
        # CPU seconds of this process: less swayed than wall time by other load on the machine.
        "ratio_ingest_vs_raw_cpu": round(raw_cpu / ingest_cpu, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=SHARED)
    parser.add_argument("--synthetic-chunks", type=int, default=5200)
    parser.add_argument("--quick", action="store_true", help="small scale-up (800 chunks) for a smoke run")
    parser.add_argument("--phase", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        data_dir, *inputs = args.phase
        print(json.dumps(run_phase(inputs, data_dir)))
        return
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found: pass --corpus DIR (a folder of */articles.jsonl)")
    target = 800 if args.quick else args.synthetic_chunks
    results: dict[str, object] = {"cores": __import__("os").cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        phases = {
            "corpus": corpus_inputs(args.corpus),
            "synthetic": synthetic_jsonl(args.corpus, target, Path(tmp) / "synthetic.jsonl"),
        }
        for name, inputs in phases.items():
            cmd = [sys.executable, __file__, "--phase", str(Path(tmp) / name), *inputs]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    corpus, synthetic = results["corpus"], results["synthetic"]
    assert isinstance(corpus, dict) and isinstance(synthetic, dict)
    results["rss_growth_mb"] = round(float(synthetic["peak_rss_mb"]) - float(corpus["peak_rss_mb"]), 1)
    results["target"] = "ratio_ingest_vs_raw >= 0.85; peak_rss_mb < 1024; flat memory"
    results["per_10k_articles_hours"] = round(
        10_000 * (float(synthetic["seconds"]) / max(1, int(synthetic["documents"]))) / 3600, 2
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
