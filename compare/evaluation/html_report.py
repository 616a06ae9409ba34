"""A self-contained HTML eval report: no script, no external file; every value from a case or a model escaped.

The matrix links to one section per case, with, per column, the metrics, the answer laid out from the same view
model as every other output (compare.view: positions, tone, claims, shifts, agreements, differences, omissions,
quotes with their statuses), the quotes the gate dropped, and the expected values.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pydantic import ValidationError

from compare.evaluation.report import ALL, HEADLINE, METRICS
from compare.render import css, fragment
from compare.types import Comparison
from compare.view import build_view

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}.worse{color:#b00;font-weight:bold}.better{color:#070}
.error{color:#b00}.dim{color:#777}.q{border-left:3px solid #69c;padding-left:6px;margin:4px 0}
.repaired{border-color:#c90}.unverified{border-color:#b00}details{margin:.5em 0}
code{background:#f5f5f5;padding:0 3px}pre{white-space:pre-wrap;background:#fafafa;padding:6px}
.nc-drill{max-width:none;padding:4px 0;font-size:14px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else _e(value)


def _anchor(case: dict[str, Any]) -> str:
    return "case-" + "".join(ch if ch.isalnum() else "-" for ch in f"{case['dataset']}-{case['name']}")


def _metric_cell(result: dict[str, Any]) -> str:
    if result.get("error"):
        return f'<span class="error">error: {_e(result["error"][:200])}</span>'
    marks = result.get("vs_baseline", {})
    bits = []
    for metric in HEADLINE:
        value = result["metrics"].get(metric)
        if value is None or metric == "errors":
            continue
        status = marks.get(metric, {}).get("status", "")
        bits.append(f'<span class="{_e(status)}">{_e(metric)} {_num(value)}</span>')
    bits.append(f"{_num(result['metrics'].get('latency_s'))} s")
    return "<br>".join(bits)


def _matrix(report: dict[str, Any]) -> str:
    labels = [c["label"] for c in report["columns"]]
    head = "".join(f"<th>{_e(label)}</th>" for label in labels)
    rows = []
    for case in report["cases"]:
        cells = "".join(
            f"<td>{_metric_cell(case['results'][label]) if label in case['results'] else '–'}</td>"
            for label in labels
        )
        link = f'<a href="#{_anchor(case)}">{_e(case["dataset"])}/{_e(case["name"])}</a>'
        rows.append(f"<tr><td>{link}</td>{cells}</tr>")
    return f"<table><tr><th>case</th>{head}</tr>{''.join(rows)}</table>"


def _aggregates(report: dict[str, Any]) -> str:
    labels = [c["label"] for c in report["columns"]]
    head = "".join(f"<th>{_e(label)}</th>" for label in labels)
    rows = []
    for metric, info in METRICS.items():
        cells = []
        for label in labels:
            values = report["aggregates"][label][ALL]
            mark = values.get("vs_baseline", {}).get(metric)
            was = f' <span class="dim">(was {_num(mark["baseline"])})</span>' if mark else ""
            cells.append(
                f'<td class="{_e(mark["status"] if mark else "")}">{_num(values.get(metric))}{was}</td>'
            )
        rows.append(
            f"<tr><td>{_e(metric)}</td>{''.join(cells)}<td class='dim'>{_e(info.description)}</td></tr>"
        )
    return f"<table><tr><th>metric</th>{head}<th>meaning</th></tr>{''.join(rows)}</table>"


def _quote(quote: dict[str, Any]) -> str:
    status = quote.get("status", "")
    where = (
        f"{quote.get('doc_id')} [{quote.get('char_start')}:{quote.get('char_end')}] {quote.get('date') or ''}"
    )
    return (
        f'<div class="q {_e(status)}">“{_e(quote.get("text"))}”<br>'
        f'<span class="dim">{_e(status)} · {_e(where)}</span></div>'
    )


def _answer(answer: dict[str, Any]) -> str:
    """The drill-down of one answer: the comparison view every other output shows (answer, positions, claims,
    shifts, agreements, differences, omissions), then how it was made. An answer that is not a Comparison
    (an older or broken record) falls back to its raw JSON."""
    try:
        comparison = Comparison.model_validate(answer)
    except ValidationError:
        return f"<pre>{_e(json.dumps(answer, ensure_ascii=False, indent=1))}</pre>"
    view = build_view(comparison)
    meta = answer.get("meta", {})
    how = (
        f"<p class='dim'>backend {_e(meta.get('backend'))} · model {_e(meta.get('model'))} · prompt "
        f"{_e(meta.get('prompt'))} · settings {_e(meta.get('settings_hash'))} · quotes "
        f"{_e(json.dumps(meta.get('quotes', {})))}</p>"
    )
    return f'<div class="nc-report nc-drill">{fragment("header", view)}{fragment("body", view, 4)}</div>{how}'


def _case_section(case: dict[str, Any], labels: list[str]) -> str:
    expected = json.dumps(case["expected"], ensure_ascii=False, indent=1)
    metadata = json.dumps(case["metadata"], ensure_ascii=False, indent=1)
    parts = [
        f'<h3 id="{_anchor(case)}">{_e(case["dataset"])}/{_e(case["name"])}</h3>',
        f"<p><b>question</b> {_e(case['question'])}<br>"
        f"<b>filters</b> <code>{_e(json.dumps(case['filters']))}</code></p>",
        f"<details><summary>expected</summary><pre>{_e(expected)}</pre></details>",
        f"<details><summary>metadata</summary><pre>{_e(metadata)}</pre></details>",
    ]
    for label in labels:
        result = case["results"].get(label)
        if result is None:
            continue
        metrics = json.dumps(result["metrics"], indent=1)
        details = json.dumps(result.get("details", {}), ensure_ascii=False, indent=1)
        body = (
            f'<p class="error">{_e(result["error"])}</p>'
            if result.get("error")
            else _answer(result.get("answer") or {})
        )
        parts.append(
            f"<details><summary><b>{_e(label)}</b> {_metric_cell(result)}</summary>{body}"
            f"<details><summary>all metrics</summary><pre>{_e(metrics)}</pre></details>"
            f"<details><summary>scoring details</summary><pre>{_e(details)}</pre></details></details>"
        )
    return "".join(parts)


def to_html(report: dict[str, Any]) -> str:
    labels = [c["label"] for c in report["columns"]]
    columns = "".join(
        f"<li><b>{_e(c['label'])}</b>: backend <code>{_e(c['backend'])}</code>, prompt {_e(c.get('prompt') or '-')}, "
        f"models {_e(', '.join(c.get('models', [])) or '-')}, settings {_e(', '.join(c.get('settings_hashes', [])))}"
        f"{', replay ' + _e(json.dumps(c['replay'])) if c.get('replay') else ''}</li>"
        for c in report["columns"]
    )
    checks = "".join(
        f"<li class='{'better' if c['passed'] else 'worse'}'>{'ok' if c['passed'] else 'FAILED'} "
        f"{_e(c['metric'])} [{_e(c['column'])}]: {_e(c['verdict'])}</li>"
        for c in report["thresholds"]
    )
    baseline = report.get("baseline")
    vs = (
        f"<p>vs baseline {_e(baseline['path'])}: {baseline['regressions']} worse, "
        f"{baseline['improvements']} better</p>"
        if baseline
        else ""
    )
    sections = "".join(_case_section(case, labels) for case in report["cases"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>eval {_e(report['suite'])}</title>"
        f"<style>{_CSS}{css()}</style></head><body><h1>eval {_e(report['suite'])}</h1>"
        f"<p class='dim'>{_e(report['created_at'])} · package {_e(report['package_version'])} · settings "
        f"{_e(report['settings_hash'])} · embedder {_e(report['embedder'])} · {_e(report['seconds'])} s</p>"
        f"<ul>{columns}</ul>{vs}<ul>{checks}</ul><h2>matrix</h2>{_matrix(report)}"
        f"<h2>all cases</h2>{_aggregates(report)}<h2>cases</h2>{sections}</body></html>\n"
    )
