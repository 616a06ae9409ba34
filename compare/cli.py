"""`ncompare`: a thin command line over the library. Parse, call, print (rich, or --json for scripts)."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

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
from compare.services import Services
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
            out.print(f"  [cyan]duplicate[/] {escape(item.origin)} = {escape(item.duplicate_of or '')}")
    if report.undated:
        out.print(f"  [yellow]no date[/] for {len(report.undated)}: {escape(', '.join(report.undated[:8]))}")
        out.print(
            "    dates are never invented: pass --date or add `date` to the metadata to place them in time"
        )
    for item in report.items:
        if item.status == "skipped":
            out.print(f"  [dim]skipped {escape(item.origin)}: {escape(item.reason or '')}[/]")
    for item in report.failed:
        out.print(f"  [red]failed[/] {escape(item.origin)}: {escape(item.reason or '')}")
        if item.hint:
            out.print(f"         -> {escape(item.hint)}")


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
    with _friendly_errors():
        rows = Services(_settings(data_dir, chroma_url)).reader_store.sources(
            _filters(source, since, until, where)
        )
    if as_json:
        _print_json([row.model_dump() for row in rows])
        return
    if not rows:
        out.print("The store is empty: add articles with `ncompare ingest PATH`.")
        return
    table = Table("source", "outlet", "documents", "duplicates", "undated", "first", "last")
    for row in rows:
        table.add_row(
            escape(row.source),
            escape(row.outlet or ""),
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
        out.print(f"[bold]{key:>10}[/]  {escape(str(value))}")


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
    out.print(f"[bold]{escape(document.title or document.id)}[/]")
    out.print(
        f"[dim]{escape(document.source)} · {document.date or 'undated'} · {escape(document.url or 'no url')}"
        f" · id {escape(document.id)}[/]"
    )
    if document.duplicate_of:
        out.print(f"[cyan]duplicate of {escape(document.duplicate_of)}[/]")
    out.print()
    out.print(escape(document.text))


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
    filters = _filters(source, since, until, where)
    with _friendly_errors():
        hits = Services(_settings(data_dir, chroma_url, embedder)).search(text, k=k, filters=filters)
    if as_json:
        _print_json([hit.model_dump() for hit in hits])
        return
    if not hits:
        out.print("No matching chunks. Check the filters, or `ncompare sources` to see what is stored.")
        return
    for rank, hit in enumerate(hits, 1):
        out.print(
            f"[bold]{rank}.[/] [green]{hit.score:.3f}[/]  [bold]{escape(hit.source)}[/]"
            f"  {hit.date or 'undated'}  [dim]{escape(hit.doc_id)} [{hit.char_start}:{hit.char_end}][/]"
        )
        out.print(f"   {escape(_snippet(hit.text))}\n")


def _snippet(text: str, width: int = 300) -> str:
    flat = " ".join(text.split())
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
    with _friendly_errors():
        settings = _settings(data_dir, chroma_url)
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
        table.add_row(name, escape(str(value)), env, escape(description))
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
        comparison = services.engine.compare(question, backend=backend, filters=filters, k=k, target=target)
    if as_json:
        _print_json(comparison.model_dump(mode="json"))
    elif as_md:
        from compare.render import to_markdown

        sys.stdout.write(to_markdown(comparison))
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
        result = services.engine.estimate(question, backend=backend, filters=filters, k=k)
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    out.print(
        f"backend [bold]{escape(result.backend)}[/] model {escape(result.model or '-')}: "
        f"{result.calls} call(s), {result.prompt_tokens} prompt tokens, "
        f"up to {result.completion_tokens_max} completion tokens, "
        f"estimated [bold]${result.cost_usd:.4f}[/]"
    )
    for note in result.notes:
        out.print(f"  [dim]{escape(note)}[/]")


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
        settings = _settings(data_dir)
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
        table.add_row(escape(row.id) + active, escape(parts), escape(str(row.path)), escape(row.description))
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
    with _friendly_errors():
        engine = Services(_settings(data_dir, chroma_url)).engine
        if pairs is not None:
            rows = engine.claim_stance_pairs(_read_pairs(pairs, engine))
        else:
            assert claim is not None
            rows = engine.claim_stance(claim, doc_ids=doc_id or (), filters=filters, max_docs=max_docs)
    if as_json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return
    from compare.terminal import print_claim_stances

    for text in dict.fromkeys(row.claim for row in rows):
        print_claim_stances(out, text, [row for row in rows if row.claim == text])


def _read_pairs(path: Path, engine: Any) -> list[tuple[str, Any]]:
    """Lines of {"claim", "doc_id"}; a bad line is an error naming the file and line."""
    if not path.is_file():
        raise CompareError(f"{path}: no such file", hint='pass a JSONL file of {"claim", "doc_id"} lines')
    wanted: list[tuple[int, str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            wanted.append((number, str(record["claim"]), str(record["doc_id"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CompareError(
                f'{path}:{number}: not a {{"claim", "doc_id"}} object ({exc})',
                hint='each line must look like {"claim": "...", "doc_id": "..."}',
            ) from exc
    documents = engine.store.get_documents(sorted({doc_id for _, _, doc_id in wanted}))
    for number, _, doc_id in wanted:
        if doc_id not in documents:
            raise CompareError(
                f"{path}:{number}: unknown doc_id {doc_id!r}", hint="check ids with `ncompare search`"
            )
    return [(claim_text, documents[doc_id]) for _, claim_text, doc_id in wanted]


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
    out.rule(f"[bold]{escape(question)}")
    hits = services.search(question, k=6)
    by_source: dict[str, list[Any]] = {}
    for hit in hits:
        by_source.setdefault(hit.source, []).append(hit)
    for source_name, source_hits in by_source.items():
        out.print(f"[bold cyan]{escape(source_name)}[/]")
        for hit in source_hits[:2]:
            out.print(
                f"  {hit.date or 'undated'}  [green]{hit.score:.2f}[/]  {escape(_snippet(hit.text, 220))}"
            )


def _register_plugins() -> None:
    """Commands that live in their own modules. They import this module for its shared helpers, so they are
    imported here, after everything they use is defined."""
    from compare.cli_eval import eval_command
    from compare.cli_report import report

    app.command("eval")(eval_command)
    app.command()(report)


def main() -> None:
    app()


Callback = Callable[..., Any]

_register_plugins()

if __name__ == "__main__":
    main()
