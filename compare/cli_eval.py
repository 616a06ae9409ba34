"""`ncompare eval`: registered in compare/cli.py with `app.command("eval")(eval_command)`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from compare.cli_common import DataDir, _friendly_errors, _settings, err, out
from compare.redact import redact
from compare.terminal import safe_markup


def eval_command(
    target: Annotated[
        str, typer.Argument(help="A suite or dataset YAML (or a name in eval/suites or eval/datasets).")
    ],
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            "-b",
            help="Backend column (repeatable): offline, openai:MODEL, "
            "openai-compatible:MODEL@URL, replay:CASSETTE.jsonl [default: the suite's].",
        ),
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option(
            "--prompt", "-p", help="Prompt name@version for LLM columns (repeatable) [default: the suite's]."
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="A previous --json report: mark regressions and gains.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here ('-': stdout).")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not reuse cached LLM responses (fresh calls, real cost).")
    ] = False,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-under",
            help="metric[@column]=value: exit 1 if below (a ceiling for errors, "
            "cost_usd, latency_*, tokens_*, quotes_dropped). Repeatable; adds to the suite's.",
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="replay backends: add generated answers to the cassette and keep only what this run used.",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Run a matrix of cases x prompts x backends and score it: quote validity, citation support, coverage,
    stance, shifts, span overlap, summary similarity, tokens, cost, latency. Exit 1 when a threshold fails."""
    from compare.evaluation import EvalRequest, run_eval
    from compare.evaluation.html_report import to_html
    from compare.evaluation.report import failed_thresholds, parse_fail_under
    from compare.evaluation.terminal import print_summary
    from compare.services import Services

    to_stdout = json_out is not None and str(json_out) == "-"
    console = err if to_stdout else out
    with _friendly_errors():
        settings = _settings(data_dir)
        request = EvalRequest(
            target,
            backends=backend or [],
            prompts=prompt or [],
            thresholds=parse_fail_under(fail_under or []),
            baseline=baseline,
            no_cache=no_cache,
            record=record,
        )
        embedder = Services(settings).embedder
        progress = (lambda line: err.print(f"[dim]{safe_markup(line)}[/]")) if err.is_terminal else None
        report = run_eval(request, settings, embedder, progress)
    print_summary(console, report)
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if to_stdout:
        typer.echo(text)
    elif json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(redact(text) + "\n", encoding="utf-8")
        console.print(f"JSON report: {safe_markup(str(json_out))}")
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(redact(to_html(report)), encoding="utf-8")
        console.print(f"HTML report: {safe_markup(str(html_out))}")
    failed = failed_thresholds(report)
    if failed:
        err.print(f"[bold red]{len(failed)} threshold(s) failed[/]")
        raise typer.Exit(1)
