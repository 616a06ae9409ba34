"""What every `ncompare` command shares: consoles, option types, settings, filters and friendly errors.

Commands that live in their own modules (cli_eval, cli_report) import from here, not from compare.cli, so the
command modules never import each other in a cycle.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from compare.errors import CompareError
from compare.settings import Settings, load_settings
from compare.store import Filters

out = Console(soft_wrap=True)
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Store and history location [env NCOMPARE_DATA_DIR; default: per-user dir]."
    ),
]
ChromaUrl = Annotated[
    str | None,
    typer.Option(
        "--chroma-url", help="Use a Chroma server (http://host:port) instead of the embedded store."
    ),
]
EmbedderOpt = Annotated[
    str | None, typer.Option("--embedder", help="'minilm' (offline default) or 'openai:<model>'.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (stable, see README).")]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable).")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only documents dated on/after YYYY-MM-DD.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only documents dated on/before YYYY-MM-DD.")]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="Metadata filter key=value, e.g. event_id=X (repeatable)."),
]


def _settings(data_dir: Path | None, chroma_url: str | None = None, embedder: str | None = None) -> Settings:
    return load_settings(data_dir=data_dir, chroma_url=chroma_url, embedder=embedder)


def _fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"  [yellow]->[/] {escape(hint)}")
    raise typer.Exit(code)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """CompareError -> a message and a hint on stderr, exit 1; never a traceback for a known failure."""
    try:
        yield
    except CompareError as exc:
        _fail(exc.message, exc.hint)
    except KeyboardInterrupt:
        _fail("interrupted", "work finished before the interruption is kept; run the same command again", 130)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _filters(
    sources: list[str] | None, since: str | None, until: str | None, where: list[str] | None
) -> Filters:
    pairs: dict[str, str] = {}
    for item in where or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--where {item!r} is not key=value", "example: --where event_id=us-gov-2022-10-10")
        pairs[key.strip()] = value.strip()
    for flag, day in (("--since", since), ("--until", until)):
        if day and not _is_iso_date(day):
            _fail(f"{flag} {day!r} is not a date", "use YYYY-MM-DD, e.g. 2022-10-01")
    return Filters(sources=sources or [], since=since, until=until, where=pairs or None)


def _is_iso_date(value: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        "-b",
        help="offline (default, no key), openai:MODEL, or openai-compatible:MODEL@http://host:port/v1.",
    ),
]
KOpt = Annotated[
    int | None, typer.Option("-k", min=1, max=50, help="Chunks retrieved per source [default 8].")
]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target", help="What stances are measured toward [default: from the question]."),
]
