"""`ncompare report SPEC.yaml --out DIR`: the batch report command (registered in compare/cli.py).

Exit codes: 0 every question answered; 2 some questions failed (the report lists them with their errors);
1 no question answered, or the spec/settings are wrong (nothing written); 130 interrupted (finished
questions are kept in DIR/.work; `--resume` continues).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from compare.cli_common import (
    BackendOpt,
    ChromaUrl,
    DataDir,
    JsonOpt,
    _file_in_the_way,
    _friendly_errors,
    _print_json,
    _settings,
    err,
    out,
)
from compare.errors import ConfigError
from compare.report_spec import load_spec
from compare.reports import (
    WORK_DIR,
    EstimateRow,
    ItemResult,
    Plan,
    Report,
    ReportInterrupted,
    ReportRunner,
    estimate_plan,
    plan_report,
    report_documents,
    report_settings,
    write_report,
)
from compare.services import Services
from compare.terminal import safe_markup

EXIT_PARTIAL = 2
EXIT_INTERRUPTED = 130


def report(
    spec: Annotated[Path, typer.Argument(help="Report spec (YAML): title, corpus, questions or group_by.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.md/.html/.json and the CSV.")
    ],
    backend: BackendOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse questions finished by an earlier run into the same --out.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print prompt tokens and estimated cost per question; send nothing."),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-j",
            min=1,
            max=32,
            help="Questions in parallel (LLM backends; offline runs one at a time).",
        ),
    ] = 4,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Run many comparisons from a spec: Markdown, HTML, JSON and CSV, with an executive overview.

    Each finished question is saved at once: after a crash or Ctrl-C, --resume computes only the rest.

    Exit code 2: some questions failed (listed in the report); 1: none answered; 130: interrupted."""
    try:
        with _friendly_errors():
            check_out_dir(out_dir)
            parsed = load_spec(spec)
            settings = report_settings(_settings(data_dir, chroma_url), parsed, backend)
            services = Services(settings)
            plan = plan_report(parsed, spec, settings, services.store)
            if dry_run:
                rows = estimate_plan(services.engine, plan, out_dir / WORK_DIR, resume=resume)
                _print_estimate(plan, rows, as_json)
                return
            result = _run(services, plan, out_dir, resume=resume, concurrency=concurrency, quiet=as_json)
            paths = write_report(result, report_documents(services.store, result), out_dir)
    except ReportInterrupted as stop:
        err.print(
            f"[bold red]interrupted:[/] {stop.saved} of {stop.total} question(s) are saved in "
            f"{safe_markup(str(stop.work_dir))}"
        )
        err.print("  [yellow]->[/] run the same command with --resume to compute only the rest")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    code = exit_code(result)
    if as_json:
        _print_json(_summary_json(result, paths, code))
    else:
        _print_summary(result, paths)
    raise typer.Exit(code)


def check_out_dir(out_dir: Path) -> None:
    """--out must be a folder or not exist yet: refused before any question is computed, not after."""
    blocker = _file_in_the_way(out_dir)
    if blocker is not None:
        where = "is a file" if blocker == out_dir else f"is under {blocker}, which is a file"
        raise ConfigError(
            f"--out {out_dir} {where}; a report is a folder (report.md, .html, .json and the CSV)",
            hint="pass a folder that does not exist yet or holds an earlier report, e.g. --out reports/NAME",
        )


def exit_code(result: Report) -> int:
    if result.run.failed == 0:
        return 0
    return EXIT_PARTIAL if result.run.ok else 1


def _run(
    services: Services, plan: Plan, out_dir: Path, *, resume: bool, concurrency: int, quiet: bool
) -> Report:
    runner = ReportRunner(services.engine, out_dir, resume=resume, concurrency=concurrency)
    if quiet or not err.is_terminal:
        return runner.run(plan)
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed · ${task.fields[cost]:.4f}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("questions", total=len(plan.items), failed=0, cost=0.0)
        failed, cost = 0, 0.0

        def on_result(item: ItemResult) -> None:
            nonlocal failed, cost
            failed += item.status == "failed"
            if item.comparison is not None and not item.from_checkpoint:
                cost += item.comparison.meta.cost_usd
            description = f"{item.item.id} {'(checkpoint)' if item.from_checkpoint else item.status}"
            progress.update(task, advance=1, failed=failed, cost=cost, description=description)

        runner.on_result = on_result
        return runner.run(plan)


def _print_estimate(plan: Plan, rows: list[EstimateRow], as_json: bool) -> None:
    totals = {
        "questions": len(rows),
        "prompt_tokens": sum(row.prompt_tokens for row in rows),
        "completion_tokens_max": sum(row.completion_tokens_max for row in rows),
        "cost_usd": round(sum(row.cost_usd for row in rows), 6),
        "calls": sum(row.calls for row in rows),
        "from_checkpoint": sum(1 for row in rows if row.checkpoint),
        "failed": sum(1 for row in rows if row.error),
    }
    if as_json:
        _print_json(
            {"backend": plan.settings.backend, "questions": [row.as_json() for row in rows], "total": totals}
        )
        return
    table = Table("#", "question", "calls", "prompt tokens", "completion max", "est. cost", "note")
    for row in rows:
        note = (
            "checkpoint: free"
            if row.checkpoint
            else (f"[red]{safe_markup(row.error)}[/]" if row.error else "")
        )
        heading = row.item.heading if len(row.item.heading) <= 70 else row.item.heading[:69] + "…"
        table.add_row(
            row.item.id,
            safe_markup(heading),
            str(row.calls),
            str(row.prompt_tokens),
            str(row.completion_tokens_max),
            f"${row.cost_usd:.4f}",
            note,
        )
    out.print(table)
    out.print(
        f"backend [bold]{safe_markup(plan.settings.backend)}[/]: {totals['calls']} call(s), "
        f"{totals['prompt_tokens']} prompt tokens, up to {totals['completion_tokens_max']} completion tokens, "
        f"estimated at most [bold]${totals['cost_usd']:.4f}[/]; nothing was sent"
    )
    estimated = [row.notes for row in rows if not row.error and not row.checkpoint]
    shared = [note for note in estimated[0] if all(note in notes for notes in estimated)] if estimated else []
    for note in shared:
        out.print(f"  [dim]{safe_markup(note)}[/]")
    out.print("  [dim]--json shows every question's notes (evidence kept, calls)[/]")


def _summary_json(result: Report, paths: list[Path], code: int) -> dict[str, object]:
    run = result.run
    return {
        "out": [str(path) for path in paths],
        "exit_code": code,
        "questions": run.questions,
        "ok": run.ok,
        "failed": run.failed,
        "computed": run.computed,
        "from_checkpoint": run.from_checkpoint,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "cost_usd": run.cost_usd,
        "cost_usd_this_run": run.cost_usd_this_run,
        "seconds": run.seconds,
        "errors": [
            {"id": i.item.id, "question": i.item.question, "error": i.error} for i in result.items if i.error
        ],
    }


def _print_summary(result: Report, paths: list[Path]) -> None:
    run = result.run
    table = Table("#", "question", "status", "sources", "shifts", "seconds")
    for item in result.items:
        comparison = item.comparison
        status = "[green]ok[/]" if comparison else "[red]failed[/]"
        status += " [dim](checkpoint)[/]" if item.from_checkpoint else ""
        table.add_row(
            item.item.id,
            safe_markup(item.item.heading),
            status,
            str(len(comparison.sources)) if comparison else safe_markup(item.error or ""),
            str(len(comparison.shifts)) if comparison else "",
            f"{item.seconds:.1f}",
        )
    out.print(table)
    colour = "green" if not run.failed else "yellow" if run.ok else "red"
    out.print(
        f"[{colour}]{run.ok} of {run.questions} question(s) answered[/], {run.failed} failed · "
        f"{run.computed} computed, {run.from_checkpoint} from checkpoints · "
        f"{run.tokens_in}+{run.tokens_out} tokens, ${run.cost_usd_this_run:.4f} spent in this run "
        f"(${run.cost_usd:.4f} for the whole report) · {run.seconds:.1f} s"
    )
    for path in paths:
        out.print(f"  {safe_markup(str(path))}")
    sys.stdout.flush()


if __name__ == "__main__":  # `python -m compare.cli_report SPEC --out DIR`, the same as `ncompare report`
    typer.run(report)
