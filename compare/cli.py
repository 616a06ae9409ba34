"""`ncompare`: a thin command line over the library. Parse, call, print (rich, or --json for scripts)."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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
from rich.text import Text

from compare.cli_common import (  # noqa: F401 - re-exported for commands in other modules
    BackendOpt,
    ChromaUrl,
    DataDir,
    EmbedderOpt,
    JsonOpt,
    KOpt,
    SinceOpt,
    SourceOpt,
    TargetOpt,
    UntilOpt,
    WhereOpt,
    _check_sources,
    _fail,
    _filters,
    _friendly_errors,
    _is_iso_date,
    _print_json,
    _settings,
    err,
    out,
)
from compare.errors import CompareError
from compare.ingest.readers import ReadOptions
from compare.redact import RedactingStream
from compare.services import Services
from compare.store import Filters
from compare.terminal import safe_markup, terminal_text
from compare.types import IngestItemResult, IngestReport, IngestStatus

app = typer.Typer(
    name="ncompare",
    help="Compare how sources tell the same story, backed by verbatim, verified quotes.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# -- ingest ------------------------------------------------------------------------------------------


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(help="Files, directories, globs or http(s) URLs.")],
    source: Annotated[str | None, typer.Option(help="Source key for every input (e.g. 'nyt').")] = None,
    outlet: Annotated[str | None, typer.Option(help="Outlet display name.")] = None,
    title: Annotated[str | None, typer.Option(help="Title (single-document inputs).")] = None,
    date: Annotated[str | None, typer.Option(help="Publication date, e.g. 2024-11-26.")] = None,
    url: Annotated[str | None, typer.Option(help="Original URL of the document.")] = None,
    format: Annotated[str | None, typer.Option(help="Force a format: jsonl, txt, md, html, pdf.")] = None,
    allow_private: Annotated[
        bool, typer.Option("--allow-private", help="Allow URLs on private/loopback addresses.")
    ] = False,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Clean, chunk, embed and store articles. Re-running adds nothing new; changed texts replace old ones."""
    settings = _settings(data_dir, chroma_url, embedder)
    if allow_private:
        settings = settings.model_copy(
            update={"ingest": settings.ingest.model_copy(update={"allow_private": True})}
        )
    options = ReadOptions(
        source=source, outlet=outlet, title=title, date=date, url=url, format=format, settings=settings.ingest
    )
    with _friendly_errors():
        services = Services(settings)
        report = _run_ingest(services, inputs, options, quiet=as_json)
    if as_json:
        _print_json(_ingest_json(report))
    else:
        _print_ingest_summary(report)
    raise typer.Exit(1 if report.failed else 0)


def _run_ingest(services: Services, inputs: list[str], options: ReadOptions, *, quiet: bool) -> IngestReport:
    if quiet or not err.is_terminal:
        return services.ingest(inputs, options)
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("loading model", total=None, chunks=0)
        services.store  # noqa: B018 - load the model and open the store under the spinner
        progress.update(task, description="ingesting")
        chunks = 0

        def on_item(item: IngestItemResult) -> None:
            nonlocal chunks
            chunks += item.chunks
            progress.update(task, advance=1, chunks=chunks, description=f"ingesting {_short(item.origin)}")

        return services.ingest(inputs, options, on_item)


def _short(origin: str, width: int = 40) -> str:
    return origin if len(origin) <= width else "…" + origin[-(width - 1) :]


def _ingest_json(report: IngestReport) -> dict[str, Any]:
    counts = {s: report.count(s) for s in typing.get_args(IngestStatus)}
    return {
        **counts,
        "chunks": sum(i.chunks for i in report.items),
        "seconds": report.seconds,
        "undated": report.undated,
        "items": [item.model_dump() for item in report.items],
    }


def _print_ingest_summary(report: IngestReport) -> None:
    summary = _ingest_json(report)
    out.print(
        f"[bold]{summary['added']}[/] added, {summary['unchanged']} unchanged, "
        f"{summary['replaced']} replaced, {summary['duplicate']} duplicates, {summary['skipped']} skipped, "
        f"[{'red' if report.failed else 'green'}]{summary['failed']} failed[/]"
        f"  ({summary['chunks']} chunks in {report.seconds:.1f} s)"
    )
    for item in report.items:
        if item.status == "duplicate":
            out.print(
                f"  [cyan]duplicate[/] {safe_markup(item.origin)} = {safe_markup(item.duplicate_of or '')}"
            )
    if report.undated:
        out.print(
            f"  [yellow]no date[/] for {len(report.undated)}: {safe_markup(', '.join(report.undated[:8]))}"
        )
        out.print(
            "    dates are never invented: pass --date or add `date` to the metadata to place them in time"
        )
    for item in report.items:
        if item.status == "skipped":
            out.print(f"  [dim]skipped {safe_markup(item.origin)}: {safe_markup(item.reason or '')}[/]")
    for item in report.failed:
        out.print(f"  [red]failed[/] {safe_markup(item.origin)}: {safe_markup(item.reason or '')}")
        if item.hint:
            out.print(f"         -> {safe_markup(item.hint)}")


# -- corpus views ------------------------------------------------------------------------------------


@app.command()
def sources(
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    where: WhereOpt = None,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Documents per source and the dates they cover (duplicates counted once)."""
    filters = _filters(source, since, until, where)
    with _friendly_errors():
        store = Services(_settings(data_dir, chroma_url)).reader_store
        _check_sources(store, filters)
        rows = store.sources(filters)
    if as_json:
        _print_json([row.model_dump() for row in rows])
        return
    if not rows:
        out.print("The store is empty: add articles with `ncompare ingest PATH`.")
        return
    table = Table("source", "outlet", "documents", "duplicates", "undated", "first", "last")
    for row in rows:
        table.add_row(
            safe_markup(row.source),
            safe_markup(row.outlet or ""),
            str(row.documents),
            str(row.duplicates),
            str(row.undated),
            row.first_date or "-",
            row.last_date or "-",
        )
    out.print(table)


@app.command()
def stats(data_dir: DataDir = None, chroma_url: ChromaUrl = None, as_json: JsonOpt = False) -> None:
    """Documents, chunks, sources and the embedder the store was built with."""
    with _friendly_errors():
        data = Services(_settings(data_dir, chroma_url)).reader_store.stats()
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        out.print(f"[bold]{key:>10}[/]  {safe_markup(str(value))}")


@app.command()
def doc(
    doc_id: Annotated[str, typer.Argument(help="Document id (see `ncompare search` or `ingest --json`).")],
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """The clean stored text of one document, with its metadata. Quote offsets index into this text."""
    with _friendly_errors():
        document = Services(_settings(data_dir, chroma_url)).reader_store.get_document(doc_id)
    if document is None:
        _fail(
            f"no document with id {doc_id!r}",
            "list what is stored with `ncompare sources` or `ncompare search`",
        )
    if as_json:
        _print_json(document.model_dump())
        return
    out.print(f"[bold]{safe_markup(document.title or document.id)}[/]")
    out.print(
        f"[dim]{safe_markup(document.source)} · {document.date or 'undated'} · {safe_markup(document.url or 'no url')}"
        f" · id {safe_markup(document.id)}[/]"
    )
    if document.duplicate_of:
        out.print(f"[cyan]duplicate of {safe_markup(document.duplicate_of)}[/]")
    out.print()
    out.print(Text(terminal_text(document.text)))


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    where: WhereOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=200, help="Number of chunks to return.")] = 8,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ranked chunks by meaning, with document id, source, date, character offsets and score."""
    if not text.strip():
        _fail("the search text is empty", 'say what to look for, e.g. ncompare search "missile strikes"')
    filters = _filters(source, since, until, where)
    with _friendly_errors():
        services = Services(_settings(data_dir, chroma_url, embedder))
        _check_sources(services.store, filters)
        hits = services.search(text, k=k, filters=filters)
    if as_json:
        _print_json([hit.model_dump() for hit in hits])
        return
    if not hits:
        out.print("No matching chunks. Check the filters, or `ncompare sources` to see what is stored.")
        return
    for rank, hit in enumerate(hits, 1):
        out.print(
            f"[bold]{rank}.[/] [green]{hit.score:.3f}[/]  [bold]{safe_markup(hit.source)}[/]"
            f"  {hit.date or 'undated'}  [dim]{safe_markup(hit.doc_id)} [{hit.char_start}:{hit.char_end}][/]"
        )
        out.print(f"   {safe_markup(_snippet(hit.text))}\n")


def _snippet(text: str, width: int = 300) -> str:
    flat = " ".join(terminal_text(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command()
def delete(
    doc_id: Annotated[
        list[str] | None, typer.Option("--doc", help="Delete this document (repeatable).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Delete every document of this source.")
    ] = None,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete documents (and their chunks) by id or by source."""
    if not doc_id and not source:
        _fail("nothing to delete", "pass --doc ID (repeatable) or --source NAME")
    with _friendly_errors():
        store = Services(_settings(data_dir, chroma_url)).reader_store
        if source:
            _check_sources(store, Filters(sources=[source]))  # a typo is named, not "deleted 0"
        deleted = store.delete_documents(doc_id) if doc_id else 0
        deleted += store.delete_source(source) if source else 0
    if as_json:
        _print_json({"deleted": deleted})
    else:
        out.print(f"deleted {deleted} document(s)")
    if deleted == 0:
        raise typer.Exit(1)


@app.command()
def config(data_dir: DataDir = None, chroma_url: ChromaUrl = None, as_json: JsonOpt = False) -> None:
    """The effective settings (defaults < .env < NCOMPARE_* variables < flags), each with its meaning."""
    settings = _settings(data_dir, chroma_url, check_data_dir=False)
    rows = settings.describe()
    if as_json:
        _print_json(
            {name: _jsonable(value) for name, value, _ in rows} | {"settings_hash": settings.settings_hash()}
        )
        return
    envs = ["NCOMPARE_" + name.upper().replace(".", "__") for name, _, _ in rows]
    table = Table("setting", "value")
    # The variable names are what users copy: never truncate or fold them; the meaning wraps instead.
    table.add_column("env variable", no_wrap=True, min_width=max(map(len, envs)))
    table.add_column("meaning", ratio=1)
    for (name, value, description), env in zip(rows, envs):
        table.add_row(name, safe_markup(str(value)), env, safe_markup(description))
    out.print(table)
    out.print(f"settings hash: {settings.settings_hash()}")


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


# -- comparison ----------------------------------------------------------------------------------------


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help='The question, e.g. "How did the US position change?"')],
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    where: WhereOpt = None,
    k: KOpt = None,
    backend: BackendOpt = None,
    target: TargetOpt = None,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
    as_md: Annotated[bool, typer.Option("--md", help="Print the comparison as Markdown.")] = False,
) -> None:
    """Compare what every source says: side by side, stance, shifts over time, agreements, differences,
    omissions — each claim backed by quotes checked against the stored text."""
    filters = _filters(source, since, until, where)
    with _friendly_errors():
        services = Services(_settings(data_dir, chroma_url))
        _check_sources(services.store, filters)
        comparison = services.engine.compare(question, backend=backend, filters=filters, k=k, target=target)
    if as_json:
        _print_json(comparison.model_dump(mode="json"))
    elif as_md:
        from compare.render import to_markdown

        sys.stdout.write(terminal_text(to_markdown(comparison)))
    else:
        from compare.terminal import print_comparison

        print_comparison(out, comparison)


@app.command()
def estimate(
    question: Annotated[str, typer.Argument(help="The question you would ask.")],
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    where: WhereOpt = None,
    k: KOpt = None,
    backend: BackendOpt = None,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Prompt tokens, calls and estimated cost of `ask` with this backend, before anything is sent."""
    filters = _filters(source, since, until, where)
    with _friendly_errors():
        services = Services(_settings(data_dir, chroma_url))
        _check_sources(services.store, filters)
        result = services.engine.estimate(question, backend=backend, filters=filters, k=k)
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    out.print(
        f"backend [bold]{safe_markup(result.backend)}[/] model {safe_markup(result.model or '-')}: "
        f"{result.calls} call(s), {result.prompt_tokens} prompt tokens, "
        f"up to {result.completion_tokens_max} completion tokens, "
        f"estimated [bold]${result.cost_usd:.4f}[/]"
    )
    for note in result.notes:
        out.print(f"  [dim]{safe_markup(note)}[/]")


@app.command()
def schema() -> None:
    """The JSON Schema of `ask --json` output (a Comparison)."""
    from compare.types import Comparison

    _print_json(Comparison.model_json_schema())


@app.command()
def prompts(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """Prompt names, versions and their variables (prompts/<name>.v<N>.yaml; a released version is never
    edited: add v<N+1>). Choose one with NCOMPARE_LLM__PROMPT=name@version."""
    from compare.analysis.prompts import list_prompts, prompt_directories

    with _friendly_errors():
        settings = _settings(data_dir, check_data_dir=False)
        rows = list_prompts(prompt_directories(settings.llm.prompts_dir))
    if as_json:
        _print_json(
            [
                {"id": r.id, "name": r.name, "version": r.version, "variables": r.variables, "parts": r.parts,
                 "path": str(r.path), "description": r.description}
                for r in rows
            ]
        )  # fmt: skip
        return
    table = Table("prompt", "parts and variables", "file", "description")
    for row in rows:
        parts = "\n".join(f"{part}: {', '.join(names)}" for part, names in row.parts.items())
        active = " [green](active)[/]" if row.id == settings.llm.prompt else ""
        table.add_row(
            safe_markup(row.id) + active,
            safe_markup(parts),
            safe_markup(str(row.path)),
            safe_markup(row.description),
        )
    out.print(table)


@app.command()
def stance(
    claim: Annotated[str | None, typer.Argument(help="The claim to test documents against.")] = None,
    doc_id: Annotated[
        list[str] | None, typer.Option("--doc", help="Only this document (repeatable).")
    ] = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    where: WhereOpt = None,
    max_docs: Annotated[int, typer.Option("--max-docs", min=1, max=200, help="Documents to test.")] = 10,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help='JSONL of {"claim", "doc_id"}; answers in the same order.')
    ] = None,
    data_dir: DataDir = None,
    chroma_url: ChromaUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Does each document agree with, dispute, merely report (discuss), or ignore a claim? With evidence."""
    if (claim is None) == (pairs is None):
        _fail("give either a CLAIM or --pairs FILE.jsonl", 'example: ncompare stance "Kyiv will fall" -s nyt')
    filters = _filters(source, since, until, where)
    problems: list[str] = []
    with _friendly_errors():
        engine = Services(_settings(data_dir, chroma_url)).engine
        if pairs is not None:
            wanted, problems = _read_pairs(pairs, engine.store)
            rows = engine.claim_stance_pairs(wanted)
        else:
            assert claim is not None
            if not doc_id:
                _check_sources(engine.store, filters)
            rows = engine.claim_stance(claim, doc_ids=doc_id or (), filters=filters, max_docs=max_docs)
    _print_stances(rows, as_json)
    if problems:
        _report_bad_pairs(problems, answered=len(rows))


def _print_stances(rows: list[Any], as_json: bool) -> None:
    if as_json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return
    from compare.terminal import print_claim_stances

    for text in dict.fromkeys(row.claim for row in rows):
        print_claim_stances(out, text, [row for row in rows if row.claim == text])


def _report_bad_pairs(problems: list[str], *, answered: int) -> None:
    """Each bad --pairs line on stderr; exit 1 (as ingest does when an input failed), the rest answered."""
    for problem in problems:
        err.print(f"[yellow]skipped[/] {safe_markup(problem)}")
    err.print(f"  [yellow]->[/] {safe_markup(PAIR_SHAPE)}; {answered} line(s) answered")
    raise typer.Exit(1)


PAIR_SHAPE = 'each line must look like {"claim": "...", "doc_id": "..."}'


def _read_pairs(path: Path, store: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """(claim, document) per good line, in file order, and a "FILE:LINE: what is wrong" per bad line."""
    wanted: list[tuple[int, str, str]] = []
    problems: list[tuple[int, str]] = []
    for number, line in _pair_lines(path):
        parsed = _parse_pair(line)
        if isinstance(parsed, str):
            problems.append((number, parsed))
        else:
            wanted.append((number, *parsed))
    documents = store.get_documents(sorted({doc_id for _, _, doc_id in wanted})) if wanted else {}
    problems += [
        (n, f"unknown doc_id {d!r} (ids: `ncompare search`)") for n, _, d in wanted if d not in documents
    ]
    pairs = [(claim_text, documents[d]) for _, claim_text, d in wanted if d in documents]
    return pairs, [f"{path}:{number}: {problem}" for number, problem in sorted(problems)]


def _pair_lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-blank lines, numbered; a file that is missing or not UTF-8 is one error for all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CompareError(
            f"{path}: cannot read ({exc.strerror})", hint=f"pass a JSONL file; {PAIR_SHAPE}"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        name = shlex.quote(str(path))
        raise CompareError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x})",
            hint=f"convert the file, e.g. from Latin-1: iconv -f latin1 -t utf-8 {name} > {name}.utf8",
        ) from None
    # split("\n"), not splitlines(): line numbers as editors count them (no break at \x1c, \x85, \u2028)
    return [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]


def _parse_pair(line: str) -> tuple[str, str] | str:
    """(claim, doc_id) from one JSONL line, or what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg}, column {exc.colno})"
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    claim_text, doc_id = record.get("claim"), record.get("doc_id")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    problem = _field_problem("claim", claim_text) or _field_problem("doc_id", doc_id)
    return problem or (str(claim_text), str(doc_id))


def _field_problem(name: str, value: object) -> str | None:
    if value is None:
        return f'no "{name}"'
    if not isinstance(value, str):
        return f'"{name}" is not text'
    return None if value.strip() else f'the "{name}" is empty'


@app.command()
def demo(
    corpus: Annotated[Path, typer.Option(help="Corpus to ingest first if the store is empty.")] = Path(
        "examples/corpus"
    ),
    data_dir: DataDir = None,
) -> None:
    """Ingest the bundled demo corpus (once) and show what the store can answer."""
    settings = _settings(data_dir)
    with _friendly_errors():
        services = Services(settings)
        if services.store.is_empty:
            if not corpus.exists():
                _fail(f"demo corpus {corpus} not found", "run from the repository root, or pass --corpus DIR")
            out.print(f"Ingesting the demo corpus from {corpus} into {settings.data_dir} …")
            _print_ingest_summary(
                _run_ingest(services, [str(corpus)], ReadOptions(settings=settings.ingest), quiet=False)
            )
        out.print()
        sources(
            data_dir=data_dir, chroma_url=None, source=None, since=None, until=None, where=None, as_json=False
        )
        for question in DEMO_QUESTIONS:
            _demo_question(services, question)


DEMO_QUESTIONS = (
    "How did the US position on Ukraine change?",
    "negotiating position",
    "longer-range missiles ATACMS strikes inside Russia",
)


def _demo_question(services: Services, question: str) -> None:
    out.rule(f"[bold]{safe_markup(question)}")
    hits = services.search(question, k=6)
    by_source: dict[str, list[Any]] = {}
    for hit in hits:
        by_source.setdefault(hit.source, []).append(hit)
    for source_name, source_hits in by_source.items():
        out.print(f"[bold cyan]{safe_markup(source_name)}[/]")
        for hit in source_hits[:2]:
            out.print(
                f"  {hit.date or 'undated'}  [green]{hit.score:.2f}[/]  {safe_markup(_snippet(hit.text, 220))}"
            )


def _register_plugins() -> None:
    """Commands that live in their own modules. They import this module for its shared helpers, so they are
    imported here, after everything they use is defined."""
    from compare.cli_eval import eval_command
    from compare.cli_report import report

    app.command("eval")(eval_command)
    app.command()(report)


def main() -> None:
    # Everything the CLI prints passes one redaction step: keys, bearer tokens, URL credentials.
    sys.stdout = RedactingStream(sys.stdout)
    sys.stderr = RedactingStream(sys.stderr)
    app()


Callback = Callable[..., Any]

_register_plugins()

if __name__ == "__main__":
    main()
