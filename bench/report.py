"""Batch report speed: one `ncompare report` over every event vs one `ncompare ask` per event. Prints JSON.

    .venv/bin/python bench/report.py [--corpus DIR] [--sample N] [--keep DIR]

The corpus (default ../shared/corpus: every `*/articles.jsonl`, about 38 events) is ingested into a temporary
store with `ncompare ingest`. Then, in the same run and on the same store:

- report: `ncompare report SPEC --out DIR` (offline, group_by event_id, one question per event) as a user runs
  it: one process that loads the models and opens the store once and batches each question's embeddings;
- baseline: the same questions as single `ncompare ask QUESTION --where event_id=X --json` calls, one process
  each, as a user would run them one by one. With --sample N only N of them run (evenly spaced) and their sum
  is scaled to all questions; the output says so.

Target: report time <= 0.5 x the sum of the single calls. The answers are compared too: a question in a report
must give the same comparison as the same `ncompare ask` (timings and settings hash aside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
SPEC = """\
title: Every event of the shared corpus
group_by: event_id
question_template: "How did {source_list} describe {label}?"
backend: offline
"""


def ncompare(*args: str) -> list[str]:
    """The command as a user runs it; `python -m compare.cli_report` until `report` is registered in the CLI."""
    script = Path(sys.executable).parent / "ncompare"
    if args[0] == "report" and not _has_report_command(script):
        return [sys.executable, "-m", "compare.cli_report", *args[1:]]
    return [str(script), *args]


def _has_report_command(script: Path) -> bool:
    probe = subprocess.run([str(script), "report", "--help"], capture_output=True, text=True, check=False)
    return probe.returncode == 0


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    return time.perf_counter() - started, done


def comparable(comparison: dict[str, Any]) -> dict[str, Any]:
    meta = dict(comparison["meta"])
    for key in ("latency_s", "created_at", "settings_hash"):
        meta.pop(key, None)
    meta["retrieval"] = {k: v for k, v in meta.get("retrieval", {}).items() if k != "seconds"}
    return {**comparison, "meta": meta}


def ask_command(item: dict[str, Any], data_dir: Path) -> list[str]:
    filters = item["filters"]
    command = ncompare("ask", item["question"], "--json", "--data-dir", str(data_dir))
    for key, value in (filters.get("where") or {}).items():
        command += ["--where", f"{key}={value}"]
    for source in filters.get("sources") or []:
        command += ["--source", source]
    command += ["--since", filters["since"]] if filters.get("since") else []
    command += ["--until", filters["until"]] if filters.get("until") else []
    return command


def sample(items: list[dict[str, Any]], size: int | None) -> list[dict[str, Any]]:
    if not size or size >= len(items):
        return items
    step = len(items) / size
    return [items[int(i * step)] for i in range(size)]


def run(corpus: Path, size: int | None, keep: Path | None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ncompare-bench-report-"))
    env = {**os.environ, "NCOMPARE_DATA_DIR": str(work / "data")}
    data_dir, out = work / "data", (keep or work / "report")
    try:
        inputs = [str(p) for p in sorted(corpus.glob("*/articles.jsonl"))] or [str(corpus)]
        ingest_s, ingested = timed(ncompare("ingest", *inputs, "--json", "--data-dir", str(data_dir)), env)
        if ingested.returncode != 0:
            raise SystemExit(f"ingest failed: {ingested.stderr[-2000:]}")
        spec = work / "spec.yaml"
        spec.write_text(SPEC, encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        report_cmd = ncompare("report", str(spec), "--out", str(out), "--data-dir", str(data_dir), "--json")
        report_s, reported = timed(report_cmd, env)
        if reported.returncode not in (0, 2):
            raise SystemExit(f"report failed: {reported.stderr[-2000:]}")
        data = json.loads((out / "report.json").read_text(encoding="utf-8"))
        rerun_s, _ = timed([*report_cmd, "--resume"], env)  # every question from its checkpoint
        items = [{**i["item"], "comparison": i["comparison"]} for i in data["items"] if i["comparison"]]
        chosen = sample(items, size)
        ask_times, same = [], 0
        for item in chosen:
            seconds, asked = timed(ask_command(item, data_dir), env)
            ask_times.append(seconds)
            if asked.returncode == 0 and comparable(json.loads(asked.stdout)) == comparable(
                item["comparison"]
            ):
                same += 1
        ask_sum = sum(ask_times)
        scaled = ask_sum * len(items) / len(chosen) if chosen else 0.0
        ratio = report_s / scaled if scaled else None
        return {
            "corpus": str(corpus),
            "documents": json.loads(ingested.stdout)["added"],
            "ingest_s": round(ingest_s, 2),
            "questions": data["run"]["questions"],
            "answered": data["run"]["ok"],
            "report_s": round(report_s, 2),
            "report_inner_s": data["run"]["seconds"],
            "report_rerun_with_resume_s": round(rerun_s, 2),
            "ask_calls_run": len(chosen),
            "ask_mean_s": round(ask_sum / len(chosen), 3) if chosen else None,
            "ask_sum_s": round(scaled, 2),
            "ask_sum_scaled_from_sample": len(chosen) < len(items),
            "ratio_report_over_ask_sum": round(ratio, 3) if ratio is not None else None,
            "target": "ratio <= 0.5",
            "meets_target": ratio is not None and ratio <= 0.5,
            "identical_to_ask": f"{same} of {len(chosen)}",
            "cpu_count": os.cpu_count(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS if DEFAULT_CORPUS.exists() else None)
    parser.add_argument("--sample", type=int, default=None, help="run only N single asks, scale their sum")
    parser.add_argument("--keep", type=Path, default=None, help="write the report here and keep it")
    args = parser.parse_args()
    corpus = args.corpus or REPO / "examples" / "corpus"
    print(json.dumps(run(corpus, args.sample, args.keep), indent=2))


if __name__ == "__main__":
    main()
