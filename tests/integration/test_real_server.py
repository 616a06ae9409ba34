"""The product against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M-Instruct on loopback.

    make integration          # builds build/llama-env once (cached), then runs this module

Skipped unless build/llama-env/.ready exists and NCOMPARE_INTEGRATION=1. The server is started with
scripts/serve_llama.py; the demo corpus (examples/corpus) is ingested into a temporary data dir; then `ncompare
ask --json`, `ncompare report` (the example spec cut to one event) and `ncompare eval` (one smoke case) run as
subprocesses with default settings and the backend openai-compatible:smollm2@URL. Each must either exit 0 with
a Comparison holding at least one verified quote and no unverified one, or exit non-zero with a message: no
traceback, no "retry later". Quote counts (fabricated quotes included) and timings go to
build/integration/results.json. A tiny model invents quotes freely; the gate must drop them, never show them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

ENV_READY = REPO / "build" / "llama-env" / ".ready"
RESULTS = REPO / "build" / "integration" / "results.json"
NCOMPARE = Path(sys.executable).parent / "ncompare"
QUESTION = "How did the US position on Ukraine change?"
COMMAND_TIMEOUT_S = 15 * 60
EVENT = "us-gov-2022-10-10-missile-strikes"

pytestmark = [
    pytest.mark.skipif(
        not (ENV_READY.exists() and os.environ.get("NCOMPARE_INTEGRATION") == "1"),
        reason="needs build/llama-env (bash scripts/make_llama_env.sh) and NCOMPARE_INTEGRATION=1",
    ),
    pytest.mark.slow,
    pytest.mark.timeout(COMMAND_TIMEOUT_S + 120),
]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sys.path.insert(0, str(REPO / "scripts"))
    from serve_llama import served

    with served() as url:
        yield url


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("integration") / "data"
    done = ncompare("ingest", str(REPO / "examples" / "corpus"), "--data-dir", str(path), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def backend(base_url: str) -> str:
    return f"openai-compatible:smollm2@{base_url}"


def ncompare(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NCOMPARE_LLM__STRUCTURED_METHOD"}
    return subprocess.run(
        [str(NCOMPARE), *args], capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT_S
    )


def quotes_in(value: Any) -> list[dict[str, Any]]:
    """Every quote object anywhere in a Comparison's JSON."""
    if isinstance(value, dict):
        found = [value] if {"doc_id", "char_start", "status"} <= value.keys() else []
        return found + [q for v in value.values() for q in quotes_in(v)]
    if isinstance(value, list):
        return [q for v in value for q in quotes_in(v)]
    return []


def quote_summary(comparison: dict[str, Any]) -> dict[str, Any]:
    counts = comparison["meta"].get("quotes", {})
    statuses = [q["status"] for q in quotes_in(comparison)]
    return {
        "meta_quotes": counts,
        "fabricated": sum(v for k, v in counts.items() if k.startswith(("unverified", "dropped"))),
        "verified_shown": statuses.count("verified"),
        "unverified_shown": statuses.count("unverified"),
        "structured_output": comparison["meta"].get("structured_output"),
        "latency_s": comparison["meta"].get("latency_s"),
        "tokens": [comparison["meta"].get("tokens_in"), comparison["meta"].get("tokens_out")],
    }


def assert_good_comparison(summary: dict[str, Any]) -> None:
    assert summary["verified_shown"] >= 1, summary
    assert summary["unverified_shown"] == 0, summary


def assert_clean_failure(done: subprocess.CompletedProcess[str], *errors: Any) -> None:
    text = done.stdout + done.stderr + "".join(str(e) for e in errors if e)
    assert (done.stdout + done.stderr).strip(), "a non-zero exit without a message"
    assert "Traceback" not in text, text[-3000:]
    assert "retry later" not in text.lower(), text[-3000:]


def record(name: str, done: subprocess.CompletedProcess[str], seconds: float, **extra: Any) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {
        "exit_code": done.returncode,
        "seconds": round(seconds, 1),
        "last_lines": (done.stdout + done.stderr).strip().splitlines()[-6:],
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


def timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = ncompare(*args)
    return done, time.monotonic() - started


def test_ask(base_url: str, data_dir: Path) -> None:
    done, seconds = timed("ask", QUESTION, "-b", backend(base_url), "--data-dir", str(data_dir), "--json")
    summary = quote_summary(json.loads(done.stdout)) if done.returncode == 0 else {}
    record("ask", done, seconds, **summary)
    if done.returncode == 0:
        assert_good_comparison(summary)
    else:
        assert_clean_failure(done)


def one_event_spec(folder: Path) -> Path:
    """The example report spec, cut to one event and no timeline."""
    spec = yaml.safe_load((REPO / "examples" / "reports" / "us-ukraine-framing.yaml").read_text())
    spec.pop("timeline", None)
    spec.update(groups=[EVENT], group_info=str(REPO / "examples" / "us_gov_ukraine-events.jsonl"))
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_report(base_url: str, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ("report", str(one_event_spec(tmp_path)), "--out", str(out), "-b", backend(base_url))
    done, seconds = timed(*args, "--concurrency", "1", "--data-dir", str(data_dir))
    items = json.loads((out / "report.json").read_text())["items"] if (out / "report.json").exists() else []
    answered = [quote_summary(i["comparison"]) for i in items if i["status"] == "ok"]
    errors = [i.get("error") for i in items if i["status"] != "ok"]
    record("report", done, seconds, answered=answered, errors=errors)
    if done.returncode == 0:
        assert answered
        for summary in answered:
            assert_good_comparison(summary)
    else:
        assert_clean_failure(done, *errors)


def smoke_suite(folder: Path) -> Path:
    dataset = REPO / "eval" / "datasets" / "smoke.yaml"
    suite = {
        "description": "one smoke case against a real server",
        "datasets": [{"path": str(dataset), "cases": ["smoke-seeds-us-position-shift"]}],
        "prompts": ["compare@1"],
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_eval(base_url: str, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    args = ("eval", str(smoke_suite(tmp_path)), "-b", backend(base_url), "--json", str(out))
    done, seconds = timed(*args, "--fail-under", "errors=0", "--data-dir", str(data_dir))
    cases = json.loads(out.read_text())["cases"] if out.exists() else []
    results = [r for case in cases for r in case["results"].values()]
    answered = [quote_summary(r["answer"]) for r in results if r["answer"] and not r["error"]]
    errors = [str(r["error"]) for r in results if r["error"]]
    metrics = [
        {k: r["metrics"].get(k) for k in ("quote_validity", "quotes_dropped", "latency_s")} for r in results
    ]
    record("eval", done, seconds, answered=answered, errors=errors, metrics=metrics)
    if done.returncode == 0:
        assert answered
        for summary in answered:
            assert_good_comparison(summary)
    else:
        assert_clean_failure(done, *errors)
