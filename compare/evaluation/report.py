"""Eval results: aggregates per column, thresholds, comparison with a previous run, and the JSON report.

Aggregation (per column, over all cases, and per dataset): ratios are pooled where they have a natural count
(quote validity = all verified / all proposed; the contested rate = all contested / all model labels read;
citation support; stance over all (expected, predicted) pairs; shift recall and ordering; judgements: positions
over all expected documents, differences, agreements, position shifts and omissions over all pairs or sources —
micro, never a mean of per-case ratios), other
per-case scores (coverage, span precision/recall and their base rates, ROUGE-L, cosines) are means over the
cases that measure them; tokens and cost are sums; latency is given as p50 and p95 over the cases; errors
count the cases that raised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare import __version__
from compare.errors import ConfigError
from compare.evaluation.runner import CaseResult, EvalRun
from compare.judgement_metrics import position_scores
from compare.metrics import CITATION_SUPPORT_THRESHOLD, macro_f1, majority_baseline, mean, percentile

REPORT_SCHEMA = "ncompare-eval/1"
ALL = "ALL"


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool | None  # None: informational, never a regression
    description: str
    tolerance: float = 0.005  # a change within this (absolute) is noise, not a regression
    relative: bool = False  # tolerance is relative (latency, tokens)


METRICS: dict[str, MetricInfo] = {
    "quote_validity": MetricInfo(True, "verified quotes / quotes proposed (presented + dropped)"),
    "quotes_dropped": MetricInfo(False, "quotes refused by the gate (fabricated or unlocatable)", 0.0),
    "quotes_repaired": MetricInfo(None, "quotes shown after a fuzzy repair"),
    "quote_slice_mismatches": MetricInfo(False, "presented quotes that do not slice the stored text", 0.0),
    "contested_rate": MetricInfo(
        False, "model labels the local stance model contests / model labels it read (judgement gate, pooled)"
    ),
    "labels_checked": MetricInfo(None, "model labels read by the local stance model on their quotes (sum)"),
    "labels_confirmed": MetricInfo(None, "... of which it confirms (sum)"),
    "labels_contested": MetricInfo(None, "... of which it contests (sum)"),
    "citation_support": MetricInfo(
        True, f"claim-quote pairs with embedding cosine >= {CITATION_SUPPORT_THRESHOLD} (calibrated)"
    ),
    "source_coverage": MetricInfo(True, "expected sources shown / expected sources (mean over cases)"),
    "stance_accuracy": MetricInfo(True, "per-source stance label = expected (pooled)"),
    "stance_macro_f1": MetricInfo(True, "macro-F1 of stance labels (pooled)"),
    "stance_majority_accuracy": MetricInfo(None, "accuracy of always answering the majority expected label"),
    "stance_majority_macro_f1": MetricInfo(None, "macro-F1 of the majority baseline"),
    "shift_recall": MetricInfo(True, "expected shifts found (pooled)"),
    "shift_ordering": MetricInfo(True, "found expected shifts in the right order (pooled)"),
    "shifts_found": MetricInfo(None, "shifts reported in all"),
    "position_accuracy": MetricInfo(True, "per-document position toward the target = expected (pooled)"),
    "position_macro_f1": MetricInfo(True, "macro-F1 of per-document positions over the 4 labels (pooled)"),
    "position_majority_accuracy": MetricInfo(None, "accuracy of always answering the majority position"),
    "position_majority_macro_f1": MetricInfo(None, "macro-F1 of the majority position baseline"),
    "position_sure_precision": MetricInfo(True, "sure positions that are right (pooled)"),
    "position_sure_coverage": MetricInfo(None, "documents whose position is sure (pooled)"),
    "difference_precision": MetricInfo(True, "predicted backs-vs-disputes pairs on the target that are true"),
    "difference_recall": MetricInfo(True, "expected backs-vs-disputes pairs found (pooled)"),
    "agreement_precision": MetricInfo(True, "predicted both-back pairs on the target that are true"),
    "agreement_recall": MetricInfo(True, "expected both-back pairs found (pooled)"),
    "position_shift_precision": MetricInfo(True, "sources with a position shift on the target that shift"),
    "position_shift_recall": MetricInfo(True, "shifting sources found with a position shift (pooled)"),
    "position_shift_direction": MetricInfo(True, "found shifting sources with the right before/after labels"),
    "steady_false_shift_rate": MetricInfo(False, "steady sources given a position shift (pooled)"),
    "omission_precision": MetricInfo(True, "sources said to ignore the target that do (pooled)"),
    "omission_recall": MetricInfo(True, "sources that ignore the target said to (pooled)"),
    "span_precision": MetricInfo(True, "judged quotes overlapping an expected span (mean over cases)"),
    "span_recall": MetricInfo(True, "expected spans overlapped by a quote (mean over cases)"),
    "span_base_precision": MetricInfo(None, "span precision of random sentences"),
    "span_base_recall": MetricInfo(None, "span recall of as many random sentences as judged quotes"),
    "rouge_l": MetricInfo(True, "ROUGE-L F1 of the per-source summaries vs the reference (mean)"),
    "summary_cosine": MetricInfo(True, "embedding cosine of the summaries vs the reference (mean)"),
    "lead_rouge_l": MetricInfo(None, "ROUGE-L F1 of the lead-3 baseline"),
    "lead_cosine": MetricInfo(None, "embedding cosine of the lead-3 baseline"),
    "tokens_in": MetricInfo(False, "prompt tokens (sum)", 0.02, True),
    "tokens_out": MetricInfo(False, "completion tokens (sum)", 0.02, True),
    "cost_usd": MetricInfo(False, "cost in USD (sum; cached calls cost 0)", 0.0001),
    "latency_p50_s": MetricInfo(False, "median latency per case, seconds", 0.5, True),
    "latency_p95_s": MetricInfo(False, "95th percentile latency per case, seconds", 0.5, True),
    "errors": MetricInfo(False, "cases that failed", 0.0),
    "cases": MetricInfo(None, "cases run"),
}
HEADLINE = (
    "quote_validity",
    "contested_rate",
    "citation_support",
    "source_coverage",
    "stance_macro_f1",
    "shift_recall",
    "position_macro_f1",
    "difference_precision",
    "position_shift_recall",
    "span_recall",
    "rouge_l",
    "errors",
)


def check_threshold_names(thresholds: dict[str, float], where: str) -> None:
    for key in thresholds:
        metric = key.split("@", 1)[0]
        if metric not in METRICS or METRICS[metric].higher_is_better is None:
            gated = sorted(k for k, v in METRICS.items() if v.higher_is_better is not None)
            raise ConfigError(
                f"{where}: unknown threshold metric {metric!r}", hint=f"use one of {', '.join(gated)}"
            )


def parse_fail_under(items: Sequence[str]) -> dict[str, float]:
    """`metric=value` or `metric@column=value` -> {key: value}, checked."""
    parsed: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            parsed[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ConfigError(
                f"--fail-under {item!r} is not metric=value", hint="e.g. --fail-under quote_validity=0.9"
            )
    check_threshold_names(parsed, "--fail-under")
    return parsed


# -- aggregates --------------------------------------------------------------------------------------------


def _sum(results: list[CaseResult], key: str) -> float:
    return sum(float(r.metrics.get(key) or 0) for r in results)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def aggregate(results: list[CaseResult]) -> dict[str, Any]:
    ok = [r for r in results if r.error is None]
    proposed = _sum(ok, "quotes_presented") + _sum(ok, "quotes_dropped")
    pairs = [(p["expected"], p["predicted"]) for r in ok for p in r.details.get("stance_pairs", [])]
    _, majority_accuracy, majority_f1 = majority_baseline([e for e, _ in pairs])
    latencies = [float(r.metrics["latency_s"]) for r in ok if r.metrics.get("latency_s") is not None]
    values: dict[str, Any] = {
        "quote_validity": _ratio(_sum(ok, "quotes_verified"), proposed),
        "quotes_presented": int(_sum(ok, "quotes_presented")),
        "quotes_dropped": int(_sum(ok, "quotes_dropped")),
        "quotes_repaired": int(_sum(ok, "quotes_repaired")),
        "quote_slice_mismatches": int(_sum(ok, "quote_slice_mismatches")),
        "contested_rate": _ratio(_sum(ok, "labels_contested"), _sum(ok, "labels_checked")),
        "labels_checked": int(_sum(ok, "labels_checked")),
        "labels_confirmed": int(_sum(ok, "labels_confirmed")),
        "labels_contested": int(_sum(ok, "labels_contested")),
        "citation_support": _ratio(
            sum((r.metrics.get("citation_support") or 0) * r.metrics.get("citation_pairs", 0) for r in ok),
            _sum(ok, "citation_pairs"),
        ),
        "source_coverage": mean(r.metrics.get("source_coverage") for r in ok),
        "stance_accuracy": _ratio(sum(e == p for e, p in pairs), len(pairs)),
        "stance_macro_f1": macro_f1(pairs),
        "stance_majority_accuracy": majority_accuracy,
        "stance_majority_macro_f1": majority_f1,
        "stance_pairs": len(pairs),
        "shift_recall": _ratio(_sum(ok, "shifts_matched"), _sum(ok, "shifts_expected")),
        "shift_ordering": _ratio(
            sum((r.metrics.get("shift_ordering") or 0) * r.metrics.get("shifts_matched", 0) for r in ok),
            _sum(ok, "shifts_matched"),
        ),
        "shifts_expected": int(_sum(ok, "shifts_expected")),
        "shifts_found": int(_sum(ok, "shifts_found")),
    }
    values |= _judgement_aggregate(ok)
    for key in (
        "source_coverage",
        "span_precision",
        "span_recall",
        "span_base_precision",
        "span_base_recall",
        "rouge_l",
        "summary_cosine",
        "lead_rouge_l",
        "lead_cosine",
    ):
        values[key] = mean(r.metrics.get(key) for r in ok)
    values |= {
        "tokens_in": int(_sum(ok, "tokens_in")),
        "tokens_out": int(_sum(ok, "tokens_out")),
        "cost_usd": round(_sum(ok, "cost_usd"), 6),
        "cached_calls": int(_sum(ok, "cached_calls")),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "errors": len(results) - len(ok),
        "cases": len(results),
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()}


#: Judgement families scored as sets (of source pairs or sources): `<name>_precision`, `<name>_recall`, pooled
#: from the per-case counts `<name>s_matched`, `<name>s_predicted`, `<name>s_expected`.
_POOLED_SETS = ("difference", "agreement", "omission", "position_shift")


def _judgement_aggregate(ok: list[CaseResult]) -> dict[str, Any]:
    """Positions pooled over every expected document; sets pooled over pairs or sources (micro)."""
    rows = [
        (p["expected"], p["predicted"], p["sure"]) for r in ok for p in r.details.get("position_pairs", [])
    ]
    positions = position_scores(rows)
    _, majority_accuracy, majority_f1 = majority_baseline([e for e, _, _ in rows])
    values: dict[str, Any] = {
        "position_accuracy": positions.accuracy,
        "position_macro_f1": positions.macro_f1,
        "position_majority_accuracy": majority_accuracy,
        "position_majority_macro_f1": majority_f1,
        "position_sure_precision": positions.sure_precision,
        "position_sure_coverage": positions.sure_coverage,
        "positions_expected": positions.documents,
    }
    for name in _POOLED_SETS:
        matched, predicted = _sum(ok, f"{name}s_matched"), _sum(ok, f"{name}s_predicted")
        values[f"{name}_precision"] = _ratio(matched, predicted)
        values[f"{name}_recall"] = _ratio(matched, _sum(ok, f"{name}s_expected"))
        values[f"{name}s_expected"] = int(_sum(ok, f"{name}s_expected"))
    values["position_shift_direction"] = _ratio(
        _sum(ok, "position_shifts_directed"), _sum(ok, "position_shifts_matched")
    )
    values["steady_false_shift_rate"] = _ratio(_sum(ok, "steady_shifted"), _sum(ok, "steady_sources"))
    return values


def aggregates(run: EvalRun) -> dict[str, dict[str, dict[str, Any]]]:
    """{column: {"ALL": metrics, dataset: metrics}}."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for column in run.columns:
        label = column.column.label
        mine = [r for r in run.results if r.column == label]
        table[label] = {ALL: aggregate(mine)}
        for dataset in run.suite.datasets:
            table[label][dataset.name] = aggregate([r for r in mine if r.dataset == dataset.name])
    return table


# -- thresholds ----------------------------------------------------------------------------------------------


def check_thresholds(
    thresholds: dict[str, float], table: dict[str, dict[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """A floor for higher-is-better metrics, a ceiling for lower-is-better ones; per column's ALL row."""
    checks = []
    for key, limit in thresholds.items():
        metric, _, only = key.partition("@")
        info = METRICS[metric]
        for column, rows in table.items():
            if only and not column.startswith(only):
                continue
            actual = rows[ALL].get(metric)
            if actual is None:
                passed, verdict = True, "not measured"
            elif info.higher_is_better:
                passed, verdict = (
                    actual >= limit,
                    f"{actual:.4g} {'>=' if actual >= limit else '<'} floor {limit:g}",
                )
            else:
                passed, verdict = (
                    actual <= limit,
                    f"{actual:.4g} {'<=' if actual <= limit else '>'} ceiling {limit:g}",
                )
            checks.append(
                {
                    "metric": metric,
                    "column": column,
                    "limit": limit,
                    "actual": actual,
                    "passed": passed,
                    "verdict": verdict,
                }
            )
    return checks


# -- baseline ----------------------------------------------------------------------------------------------


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"baseline {path}: cannot read it ({exc})", hint="pass a file written by --json"
        ) from exc
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise ConfigError(
            f"baseline {path} is not an eval report", hint="pass a file written by `ncompare eval --json`"
        )
    return data


def change(metric: str, now: Any, before: Any) -> str | None:
    """'better', 'worse', or None (same, noise, or not comparable)."""
    info = METRICS.get(metric)
    if info is None or info.higher_is_better is None or not isinstance(now, int | float):
        return None
    if not isinstance(before, int | float):
        return None
    delta = float(now) - float(before)
    allowed = info.tolerance * abs(float(before)) if info.relative else info.tolerance
    if abs(delta) <= allowed:
        return None
    return "better" if (delta > 0) == info.higher_is_better else "worse"


# Per-case metrics compared with the baseline (the aggregate names differ for latency).
CASE_COMPARED = (
    "quote_validity",
    "quotes_dropped",
    "quote_slice_mismatches",
    "contested_rate",
    "citation_support",
    "source_coverage",
    "stance_macro_f1",
    "shift_recall",
    "shift_ordering",
    "position_macro_f1",
    "position_sure_precision",
    "difference_precision",
    "difference_recall",
    "agreement_precision",
    "position_shift_precision",
    "position_shift_recall",
    "steady_false_shift_rate",
    "omission_precision",
    "omission_recall",
    "span_precision",
    "span_recall",
    "rouge_l",
    "summary_cosine",
    "tokens_in",
    "tokens_out",
    "cost_usd",
)


def compare_baseline(report: dict[str, Any], baseline: dict[str, Any], path: Path) -> dict[str, Any]:
    """Marks every compared metric better/worse than the baseline, per case cell and per aggregate."""
    old_cases = {(c["dataset"], c["name"]): c for c in baseline.get("cases", [])}
    regressions = improvements = 0
    for case in report["cases"]:
        previous = old_cases.get((case["dataset"], case["name"]), {}).get("results", {})
        for column, result in case["results"].items():
            old = previous.get(column)
            if old is None:
                continue
            marks = {}
            for metric in CASE_COMPARED:
                verdict = change(metric, result["metrics"].get(metric), old["metrics"].get(metric))
                if verdict:
                    marks[metric] = {"status": verdict, "baseline": old["metrics"].get(metric)}
            if result.get("error") and not old.get("error"):
                marks["errors"] = {"status": "worse", "baseline": 0}
            result["vs_baseline"] = marks
            regressions += sum(1 for m in marks.values() if m["status"] == "worse")
            improvements += sum(1 for m in marks.values() if m["status"] == "better")
    for column, rows in report["aggregates"].items():
        old_rows = baseline.get("aggregates", {}).get(column, {})
        for name, values in rows.items():
            old_values = old_rows.get(name)
            if old_values is None:
                continue
            values["vs_baseline"] = {
                metric: {"status": verdict, "baseline": old_values.get(metric)}
                for metric in METRICS
                if (verdict := change(metric, values.get(metric), old_values.get(metric)))
            }
    return {
        "path": str(path),
        "created_at": baseline.get("created_at"),
        "regressions": regressions,
        "improvements": improvements,
    }


# -- the JSON report -----------------------------------------------------------------------------------------


def _expected_json(case: Any) -> dict[str, Any]:
    return case.expected.model_dump(mode="json", exclude_defaults=True)


def build_report(run: EvalRun, thresholds: dict[str, float]) -> dict[str, Any]:
    """Everything needed to reproduce, compare and drill into a run; stable keys (schema ncompare-eval/1)."""
    table = aggregates(run)
    by_case: dict[tuple[str, str], dict[str, Any]] = {}
    for dataset in run.suite.datasets:
        for case in dataset.cases:
            by_case[(dataset.name, case.name)] = {
                "dataset": dataset.name,
                "name": case.name,
                "question": case.inputs.question,
                "target": case.inputs.target,
                "filters": case.inputs.filters.model_dump(mode="json", exclude_defaults=True),
                "expected": _expected_json(case),
                "metadata": case.metadata,
                "results": {},
            }
    for result in run.results:
        by_case[(result.dataset, result.case)]["results"][result.column] = result.to_json()
    return {
        "schema": REPORT_SCHEMA,
        "suite": run.suite.name,
        "suite_path": str(run.suite.path) if run.suite.path else None,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "package_version": __version__,
        "settings_hash": run.settings.settings_hash(),
        "embedder": run.settings.embedder,
        "seconds": run.seconds,
        "citation_support_threshold": CITATION_SUPPORT_THRESHOLD,
        "columns": [
            {"label": c.column.label, "backend": c.column.backend, "prompt": c.column.prompt, **c.info}
            for c in run.columns
        ],
        "datasets": [
            {"name": d.name, "path": str(d.path), "cases": len(d.cases), "description": d.description}
            for d in run.suite.datasets
        ],
        "corpora": run.corpora,
        "aggregates": table,
        "thresholds": check_thresholds(thresholds, table),
        "cases": list(by_case.values()),
    }


def failed_thresholds(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [check for check in report["thresholds"] if not check["passed"]]
