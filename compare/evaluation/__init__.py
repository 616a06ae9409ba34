"""`ncompare eval`: datasets of cases x prompts x backends, scored with compare.metrics.

datasets.py   dataset and suite YAML, validated (unknown keys name the case and key)
corpora.py    one store per eval corpus, keyed by content and settings, reused between runs
runner.py     the matrix: columns (prompt x backend), one Comparison per case and column, scored
replay.py     cassettes of recorded LLM responses and the loopback server that replays them
synthetic.py  the deterministic stand-in model that recorded the shipped cassettes
report.py     aggregates, thresholds, baseline comparison, the JSON report
terminal.py   the matrix with rich; html_report.py the self-contained HTML report
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compare.embedding import Embedder
from compare.evaluation.datasets import Suite, load_target
from compare.evaluation.report import build_report, compare_baseline, load_baseline
from compare.evaluation.runner import Progress, RunOptions, run_suite
from compare.settings import Settings

__all__ = ["EvalRequest", "Suite", "load_target", "run_eval"]


class EvalRequest:
    """What to run: a suite or dataset, optionally with other backends/prompts and extra thresholds."""

    def __init__(
        self,
        target: str,
        *,
        backends: Sequence[str] = (),
        prompts: Sequence[str] = (),
        thresholds: dict[str, float] | None = None,
        baseline: Path | None = None,
        no_cache: bool = False,
        record: bool = False,
    ) -> None:
        self.target = target
        self.backends = list(backends)
        self.prompts = list(prompts)
        self.thresholds = thresholds or {}
        self.baseline = baseline
        self.no_cache = no_cache
        self.record = record


def run_eval(
    request: EvalRequest, settings: Settings, embedder: Embedder, progress: Progress | None = None
) -> dict[str, Any]:
    """Load, run, score, compare: the JSON report (see compare.evaluation.report)."""
    suite = load_target(request.target)
    baseline = load_baseline(request.baseline) if request.baseline else None
    options = RunOptions(
        backends=request.backends or suite.backends or [settings.backend],
        prompts=request.prompts or suite.prompts or [settings.llm.prompt],
        no_cache=request.no_cache,
        record=request.record,
    )
    run = run_suite(suite, settings, embedder, options, progress)
    report = build_report(run, {**suite.thresholds, **request.thresholds})
    if baseline is not None and request.baseline is not None:
        report["baseline"] = compare_baseline(report, baseline, request.baseline)
    return report
