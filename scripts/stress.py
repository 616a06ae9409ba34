"""`make stress`: several processes on one store at once, then a check that nothing was lost.

    python scripts/stress.py [--trials 3] [--docs 240] [--server]

Each trial starts on a fresh data dir: two `ncompare ingest` processes (disjoint halves of a synthetic corpus
built from the demo articles), readers polling `ncompare stats` and `ncompare sources` every second, and a
loop of offline `ncompare ask`. When the ingests end it checks, on the final store:
- every document an ingest reported as added is stored, and nothing else is;
- every document's chunk count matches the chunks stored for it; no chunk without its document (orphans);
- every document's chunks are found by a vector query (Chroma keeps vectors apart from records);
- every process exited 0 (an ask or read that found an empty store is fine; a traceback is not).
With --server the store is a Chroma server on loopback (`chroma run`), shared by every process.
Prints one JSON line per trial and a summary; exit 1 when any trial lost or orphaned anything.
Not part of `make test` (it takes minutes): run it after touching the store or the ingest pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "examples" / "corpus" / "us_gov_ukraine" / "articles.jsonl"
NCOMPARE = [str(Path(sys.executable).with_name("ncompare"))]


def synthetic_corpus(n: int, seed: int) -> list[dict[str, object]]:
    """n distinct short articles made of the demo corpus's paragraphs, five sources, dated."""
    paragraphs = [
        p.strip()
        for line in CORPUS.read_text(encoding="utf-8").splitlines()
        for p in json.loads(line)["text"].split("\n\n")
        if len(p.split()) > 25
    ]
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        body = "\n\n".join(rng.sample(paragraphs, 3))
        docs.append(
            {
                "id": f"stress-{i:04d}",
                "source": f"source-{i % 5}",
                "date": f"2023-{1 + i % 12:02d}-{1 + i % 27:02d}",
                "title": f"Stress article {i}",
                "text": f"Article number {i} of the stress corpus.\n\n{body}",
            }
        )
    return docs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the Chroma server did not start within 60 s")


def run_trial(trial: int, docs: int, server: bool, workdir: Path) -> dict[str, object]:
    data_dir = workdir / f"trial-{trial}"
    corpus = synthetic_corpus(docs, seed=trial)
    halves = [corpus[0::2], corpus[1::2]]
    files = []
    for index, half in enumerate(halves):
        path = workdir / f"trial-{trial}-part{index}.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in half), encoding="utf-8")
        files.append(path)
    env = {**os.environ, "NCOMPARE_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    server_proc = None
    if server:
        server_proc, url = start_server(workdir / f"trial-{trial}-chroma")
        env["NCOMPARE_CHROMA_URL"] = url
    started = time.monotonic()
    try:
        ingests = [
            subprocess.Popen(
                [*NCOMPARE, "ingest", str(f), "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for f in files
        ]
        failures: list[str] = []
        polls = [0]
        readers = [
            threading.Thread(target=poll, args=(command, ingests, env, polls, failures))
            for command in (
                ["stats"],
                ["sources"],
                ["ask", "What did they say about air defense?", "-b", "offline"],
            )
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        added: set[str] = set()
        for proc in ingests:
            out, err = proc.communicate()
            if proc.returncode != 0:
                failures.append(f"ingest rc {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
                continue
            summary = json.loads(out)
            added |= {
                i["doc_id"] for i in summary["items"] if i["status"] in ("added", "replaced", "duplicate")
            }
        counts = check_store(data_dir, env.get("NCOMPARE_CHROMA_URL"))
    finally:
        if server_proc is not None:
            server_proc.kill()
            server_proc.wait()
    stored = set(counts.pop("ids"))  # type: ignore[arg-type]
    return {
        "trial": trial,
        "store": "server" if server else "embedded",
        "documents": docs,
        "reported_added": len(added),
        "stored": len(stored),
        "lost": len(added - stored),
        "unreported": len(stored - added),
        **counts,
        "reader_runs": polls[0],
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }


def poll(
    command: list[str],
    writers: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    runs: list[int],
    failures: list[str],
) -> None:
    """Run a reader command about once a second while any writer runs; record tracebacks."""
    while any(p.poll() is None for p in writers):
        done = subprocess.run([*NCOMPARE, *command], env=env, capture_output=True, text=True, timeout=300)
        runs[0] += 1
        if "Traceback" in done.stderr or done.returncode not in (0, 1):
            failures.append(f"{command[0]} rc {done.returncode}: {done.stderr.strip()[-200:]}")
        time.sleep(1.0)


def check_store(data_dir: Path, chroma_url: str | None) -> dict[str, object]:
    from compare.settings import Settings
    from compare.store import Store

    store = Store(Settings(data_dir=data_dir, chroma_url=chroma_url))
    rows = store.document_metadata(None)
    ids = [str(r["id"]) for r in rows]
    chunks = store._chunks.get(include=["metadatas"])
    per_doc: dict[str, int] = {}
    for meta in chunks["metadatas"]:
        per_doc[str(meta["doc_id"])] = per_doc.get(str(meta["doc_id"]), 0) + 1
    mismatched = sum(1 for r in rows if per_doc.get(str(r["id"]), 0) != int(r["n_chunks"]))
    orphans = sum(n for doc_id, n in per_doc.items() if doc_id not in set(ids))
    # Every document's chunks must be found by a vector query too (Chroma keeps vectors apart from records).
    dim = store.dim or 384
    probe = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
    unsearchable = sum(
        1
        for doc_id in ids
        if not store._chunks.query(query_embeddings=[probe], n_results=1, where={"doc_id": doc_id})["ids"][0]
    )
    return {
        "ids": ids,
        "chunk_count_mismatches": mismatched,
        "orphan_chunks": orphans,
        "unsearchable": unsearchable,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--docs", type=int, default=240)
    parser.add_argument("--server", action="store_true", help="use a Chroma server on loopback")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ncompare-stress-"))
    bad = 0
    try:
        for trial in range(args.trials):
            result = run_trial(trial, args.docs, args.server, workdir)
            print(json.dumps(result), flush=True)
            bad += bool(
                result["lost"]
                or result["unreported"]
                or result["orphan_chunks"]
                or result["chunk_count_mismatches"]
                or result["unsearchable"]
            ) or bool(result["failures"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"trials": args.trials, "bad_trials": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
