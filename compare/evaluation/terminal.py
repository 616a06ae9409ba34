"""The eval matrix on a terminal: rows are cases, columns are prompt x backend; red = worse than the baseline,
green = better. Then the aggregates per column and the threshold checks."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from compare.evaluation.report import ALL, HEADLINE, METRICS

_SHORT = {
    "quote_validity": "valid",
    "citation_support": "cite",
    "source_coverage": "cover",
    "stance_macro_f1": "stanceF1",
    "position_macro_f1": "posF1",
    "shift_recall": "shift",
    "span_recall": "spanR",
    "rouge_l": "rougeL",
}


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _style(marks: dict[str, Any], metric: str) -> str:
    status = marks.get(metric, {}).get("status")
    return {"worse": "bold red", "better": "green"}.get(status or "", "")


def cell(result: dict[str, Any]) -> Text:
    """The headline metrics of one case under one column, the ones the case measures."""
    if result.get("error"):
        return Text("error: " + result["error"][:120], style="bold red")
    metrics, marks = result["metrics"], result.get("vs_baseline", {})
    text = Text()
    parts: list[tuple[str, str]] = []
    validity = f"{_number(metrics.get('quote_validity'))}"
    if metrics.get("quotes_dropped"):
        validity += f" ({metrics['quotes_dropped']} dropped)"
    parts.append((f"valid {validity}", _style(marks, "quote_validity") or _style(marks, "quotes_dropped")))
    if metrics.get("labels_checked"):
        contested = f"contested {metrics.get('labels_contested', 0)}/{metrics['labels_checked']}"
        parts.append((contested, _style(marks, "contested_rate")))
    for metric in ("citation_support", "source_coverage", "stance_macro_f1", "position_macro_f1", "rouge_l"):
        if metrics.get(metric) is not None:
            parts.append((f"{_SHORT[metric]} {_number(metrics[metric])}", _style(marks, metric)))
    if metrics.get("shifts_expected"):
        shift = f"shift {metrics['shifts_matched']}/{metrics['shifts_expected']}"
        parts.append((shift, _style(marks, "shift_recall")))
    parts += _judgement_parts(metrics, marks)
    if metrics.get("span_recall") is not None:
        span = f"span P{_number(metrics.get('span_precision'))} R{_number(metrics['span_recall'])}"
        span += f" (rand R{_number(metrics.get('span_base_recall'))})"
        parts.append((span, _style(marks, "span_recall")))
    parts.append((f"{_number(metrics.get('latency_s'))}s", ""))
    for index, (words, style) in enumerate(parts):
        text.append(("  " if index % 3 else ("\n" if index else "")) + words, style=style)
    return text


def _judgement_parts(metrics: dict[str, Any], marks: dict[str, Any]) -> list[tuple[str, str]]:
    """Differences and omissions as precision/recall, position shifts as found/expected and false shifts
    on steady sources; only the families the case measures."""
    parts = []
    for name, short in (("difference", "diff"), ("omission", "omit")):
        if metrics.get(f"{name}s_expected") is not None:
            precision, recall = metrics.get(f"{name}_precision"), metrics.get(f"{name}_recall")
            words = f"{short} P{_number(precision)} R{_number(recall)}"
            parts.append((words, _style(marks, f"{name}_precision") or _style(marks, f"{name}_recall")))
    if metrics.get("position_shifts_expected") is not None:
        words = f"pshift {metrics['position_shifts_matched']}/{metrics['position_shifts_expected']}"
        words += f" +{metrics['position_shifts_predicted'] - metrics['position_shifts_matched']}"
        if metrics.get("steady_sources"):
            words += f" steady {metrics['steady_shifted']}/{metrics['steady_sources']}"
        parts.append(
            (words, _style(marks, "position_shift_recall") or _style(marks, "steady_false_shift_rate"))
        )
    return parts


def print_matrix(console: Console, report: dict[str, Any]) -> None:
    labels = [c["label"] for c in report["columns"]]
    table = Table(title=f"eval {escape(report['suite'])}", show_lines=True)
    table.add_column("case", overflow="fold")
    for label in labels:
        table.add_column(escape(label), overflow="fold")
    for case in report["cases"]:
        row: list[Text | str] = [escape(f"{case['dataset']}/{case['name']}")]
        row += [cell(case["results"][label]) if label in case["results"] else "–" for label in labels]
        table.add_row(*row)
    console.print(table)


def print_aggregates(console: Console, report: dict[str, Any]) -> None:
    labels = [c["label"] for c in report["columns"]]
    table = Table(title="all cases", show_lines=False)
    table.add_column("metric")
    for label in labels:
        table.add_column(escape(label), justify="right")
    explain = console.width >= 140
    if explain:
        table.add_column("meaning", overflow="fold")
    shown = [*HEADLINE, *(m for m in METRICS if m not in HEADLINE)]
    for metric in shown:
        row: list[Text | str] = [metric]
        for label in labels:
            values = report["aggregates"][label][ALL]
            mark = values.get("vs_baseline", {}).get(metric)
            text = Text(_number(values.get(metric)), style=_style(values.get("vs_baseline", {}), metric))
            if mark:
                text.append(f" (was {_number(mark['baseline'])})", style="dim")
            row.append(text)
        if explain:
            row.append(Text(METRICS[metric].description, style="dim"))
        table.add_row(*row)
    console.print(table)


def print_summary(console: Console, report: dict[str, Any]) -> None:
    print_matrix(console, report)
    print_aggregates(console, report)
    for column in report["columns"]:
        extras = []
        if column.get("replay"):
            extras.append("replay " + ", ".join(f"{k} {v}" for k, v in column["replay"].items()))
        models = ", ".join(column.get("models", [])) or "-"
        console.print(
            f"[bold]{escape(column['label'])}[/]: model {escape(models)}; "
            f"prompt {escape(column.get('prompt') or '-')}; "
            f"settings {escape(', '.join(column.get('settings_hashes', [])) or column.get('settings_hash', ''))}"
            + (f"; {escape('; '.join(extras))}" if extras else "")
        )
    baseline = report.get("baseline")
    if baseline:
        console.print(
            f"vs baseline {escape(baseline['path'])}: [red]{baseline['regressions']} worse[/], "
            f"[green]{baseline['improvements']} better[/]"
        )
    for corpus in report["corpora"]:
        for warning in corpus.get("warnings", [])[:5]:
            console.print(f"[yellow]corpus[/] {escape(warning)}")
    for check in report["thresholds"]:
        style = "green" if check["passed"] else "bold red"
        word = "ok" if check["passed"] else "FAILED"
        console.print(
            f"[{style}]{word}[/] {escape(check['metric'])} {escape('[' + check['column'] + ']')}: "
            f"{escape(check['verdict'])}"
        )
    console.print(
        f"[dim]package {report['package_version']} · settings {report['settings_hash']} · "
        f"{report['seconds']:.1f} s[/]"
    )
