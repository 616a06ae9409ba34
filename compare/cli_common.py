"""What every `ncompare` command shares: consoles, option types, settings, filters and friendly errors.

Commands that live in their own modules (cli_eval, cli_report) import from here, not from compare.cli, so the
command modules never import each other in a cycle.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from compare.analysis.client_errors import foreign_reply, raised_in_llm_client
from compare.errors import CompareError, ConfigError
from compare.settings import Settings, load_settings
from compare.store import Filters, Store
from compare.terminal import safe_markup

# emoji=False: an article's ":thumbs_up:" is text, like its "[bold]".
out = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, emoji=False)

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


def _settings(
    data_dir: Path | None,
    chroma_url: str | None = None,
    embedder: str | None = None,
    *,
    check_data_dir: bool = True,
) -> Settings:
    """The effective settings; a bad NCOMPARE_* value, or a data dir that is a file, ends the command."""
    with _friendly_errors():
        settings = load_settings(data_dir=data_dir, chroma_url=chroma_url, embedder=embedder)
        if check_data_dir:
            _check_data_dir(settings.data_dir)
    return settings


def _check_data_dir(path: Path) -> None:
    """Refuse a data dir that is a file, or lies under one, before anything (store, caches) is put there."""
    blocker = _file_in_the_way(path)
    if blocker is not None:
        problem = (
            "is a file, not a directory" if blocker == path else f"cannot be created: {blocker} is a file"
        )
        raise ConfigError(
            f"the data dir {path} {problem}",
            hint="point --data-dir (or NCOMPARE_DATA_DIR) at a directory; a missing one is created",
        )


def _file_in_the_way(folder: Path) -> Path | None:
    """The file that stops `folder` from being a directory: itself, or the nearest existing parent."""
    for place in (folder, *folder.parents):
        if place.exists():
            return None if place.is_dir() else place
    return None


def _fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {safe_markup(message)}")
    if hint:
        err.print(f"  [yellow]->[/] {safe_markup(hint)}")
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
    except Exception as exc:
        if not raised_in_llm_client(exc.__traceback__):
            raise
        failure = foreign_reply(exc)
        _fail(failure.message, failure.hint)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _filters(
    sources: list[str] | None, since: str | None, until: str | None, where: list[str] | None
) -> Filters:
    for flag, day in (("--since", since), ("--until", until)):
        if day is not None and not _is_iso_date(day):
            _fail(f"{flag}: unreadable date {day!r} (use YYYY-MM-DD)", f"e.g. {flag} 2022-10-01")
    if since and until and since > until:
        _fail(f"--since {since} is after --until {until}", "swap them, or widen the range")
    return Filters(sources=sources or [], since=since, until=until, where=_where_pairs(where or []) or None)


def _where_pairs(items: list[str]) -> dict[str, str]:
    """`-w KEY=VALUE` options as a dict; a key must name a metadata field (not empty, no Chroma `$` operator)."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or key.startswith("$"):
            problem = (
                "no '='" if not sep else "the key is empty" if not key else f"the key {key!r} starts with '$'"
            )
            _fail(
                f"--where {item!r}: {problem}; write -w key=value, where key is a metadata field of the articles",
                "e.g. -w event_id=us-gov-2022-10-10; `ncompare doc ID --json` shows a document's metadata",
            )
        pairs[key] = value
    return pairs


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_iso_date(value: str) -> bool:
    """YYYY-MM-DD and a real day (date.fromisoformat alone also takes 20221001 and 2022-W40-1)."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return _ISO_DAY.fullmatch(value) is not None


def _some(names: list[str], shown: int) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _check_sources(store: Store, filters: Filters) -> None:
    """A --source the store does not hold is named, rather than reported as 'no passage matches'."""
    if not filters.sources:
        return
    known = store.source_names()
    unknown = [name for name in filters.sources if name not in known]
    if not unknown:
        return
    names = ", ".join(repr(name) for name in unknown)
    if not known:
        raise ConfigError(
            f"no source {names}: the store is empty", hint="add articles with `ncompare ingest PATH`"
        )
    raise ConfigError(
        f"no source {names} in this store; sources: {_some(known, 20)}",
        hint="use one of these with -s, or see them with dates and counts in `ncompare sources`",
    )


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
