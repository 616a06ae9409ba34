"""Rich terminal views of a Comparison: sources side by side, shifts, agreements, differences, omissions.

Every string from an article or a model is escaped before rich sees it, so `[bold]` in an article is text.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from compare.types import ClaimStanceResult, Comparison, Quote, SourceView, Stance

STANCE_COLOURS = {
    "positive": "green",
    "negative": "red",
    "neutral": "white",
    "mixed": "yellow",
    "not_addressed": "dim",
    "agree": "green",
    "disagree": "red",
    "discuss": "cyan",
    "unrelated": "dim",
}
STATUS_MARKS = {"verified": "[green]✓ verified[/]", "repaired": "[yellow]~ repaired[/]"}
#: Width of one source column; the terminal fits as many side by side as it can.
COLUMN_WIDTH = 48


def stance_badge(stance: Stance) -> str:
    colour = STANCE_COLOURS.get(stance.label, "white")
    badge = f"[bold {colour}]{stance.label}[/] {stance.confidence:.2f}"
    return badge + (" [dim](low confidence)[/]" if stance.low_confidence else "")


def quote_line(quote: Quote, *, width: int = 240) -> str:
    """A quote as it is shown: its stored text, status, source and date, and where it sits."""
    text = " ".join(quote.text.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    mark = STATUS_MARKS.get(quote.status, "[red]unverified[/]")
    where = f"{quote.doc_id} [{quote.char_start}:{quote.char_end}]"
    return f"“{escape(text)}” [dim]{escape(quote.date or 'undated')} · {escape(where)}[/] {mark}"


def source_panel(view: SourceView) -> Panel:
    parts: list[RenderableType] = [
        Text.from_markup(
            f"{stance_badge(view.stance)} [dim]toward {escape(view.stance.target)}[/]\n"
            f"[dim]{len(view.documents)} document(s), "
            f"{escape(view.first_date or 'undated')} → {escape(view.last_date or 'undated')}[/]"
        )
    ]
    if view.summary_quotes:
        parts.append(Text.from_markup("\n[bold]Summary (verbatim)[/]"))
        parts.extend(Text.from_markup(f"• {quote_line(q)}") for q in view.summary_quotes)
    claims = [claim for claim in view.claims if claim.quotes][:4]
    if claims:
        parts.append(Text.from_markup("\n[bold]Key claims[/]"))
        for claim in claims:
            parts.append(Text.from_markup(f"• {quote_line(claim.quotes[0], width=180)}"))
    title = f"[bold]{escape(view.outlet or view.source)}[/]"
    if view.outlet and view.outlet != view.source:
        title += f" [dim]({escape(view.source)})[/]"
    return Panel(Group(*parts), title=title, width=COLUMN_WIDTH, border_style="cyan")


def print_comparison(console: Console, comparison: Comparison) -> None:
    console.rule(f"[bold]{escape(comparison.question)}")
    console.print(f"[dim]stance target:[/] {escape(comparison.target)}")
    console.print(Columns([source_panel(view) for view in comparison.sources], equal=True))
    _print_shifts(console, comparison)
    _print_agreements(console, comparison)
    _print_differences(console, comparison)
    _print_omissions(console, comparison)
    _print_meta(console, comparison)


def _print_shifts(console: Console, comparison: Comparison) -> None:
    if not comparison.shifts:
        console.print("\n[dim]No stance shift found in the retrieved passages.[/]")
        return
    table = Table(title="Shifts over time", show_lines=True, expand=True)
    table.add_column("source", ratio=1)
    table.add_column("before", ratio=3)
    table.add_column("after", ratio=3)
    table.add_column("what changed", ratio=2)
    for shift in comparison.shifts:
        table.add_row(
            escape(shift.source),
            _point(shift.before.stance, shift.before.quote),
            _point(shift.after.stance, shift.after.quote),
            escape(shift.description),
        )
    console.print(table)


def _point(stance: str, quote: Quote) -> str:
    colour = STANCE_COLOURS.get(stance, "white")
    return f"[{colour}]{escape(stance)}[/] {quote_line(quote, width=200)}"


def _print_agreements(console: Console, comparison: Comparison) -> None:
    if not comparison.agreements:
        return
    table = Table(title="Agreements", show_lines=True, expand=True)
    table.add_column("claim", ratio=2)
    table.add_column("sources", ratio=1)
    table.add_column("quotes", ratio=3)
    for agreement in comparison.agreements:
        table.add_row(
            escape(_short(agreement.claim)),
            escape(", ".join(agreement.sources)),
            "\n".join(f"[bold]{escape(q.source)}[/]: {quote_line(q, width=140)}" for q in agreement.quotes),
        )
    console.print(table)


def _print_differences(console: Console, comparison: Comparison) -> None:
    if not comparison.differences:
        return
    table = Table(title="Differences", show_lines=True, expand=True)
    table.add_column("claim", ratio=2)
    table.add_column("positions", ratio=4)
    for difference in comparison.differences:
        lines = []
        for position in difference.positions:
            colour = STANCE_COLOURS.get(position.position, "white")
            quote = f" {quote_line(position.quotes[0], width=140)}" if position.quotes else ""
            lines.append(f"[bold]{escape(position.source)}[/]: [{colour}]{position.position}[/]{quote}")
        table.add_row(escape(_short(difference.claim)), "\n".join(lines))
    console.print(table)


def _print_omissions(console: Console, comparison: Comparison) -> None:
    if not comparison.omissions:
        return
    sources = [view.source for view in comparison.sources]
    table = Table(title="Omissions (✓ reports the claim, · does not)", expand=True)
    table.add_column("claim", ratio=3)
    for source in sources:
        table.add_column(escape(source), justify="center", ratio=1)
    for omission in comparison.omissions:
        marks = ["[green]✓[/]" if s in omission.reported_by else "[dim]·[/]" for s in sources]
        table.add_row(escape(_short(omission.claim)), *marks)
    console.print(table)


def _print_meta(console: Console, comparison: Comparison) -> None:
    meta = comparison.meta
    quotes = meta.quotes
    line = (
        f"backend {escape(meta.backend)} · model {escape(meta.model or '-')} · "
        f"{quotes.get('presented', 0)} quotes shown ({quotes.get('presented_verified', 0)} verified, "
        f"{quotes.get('presented_repaired', 0)} repaired)"
    )
    dropped = sum(v for k, v in quotes.items() if k.startswith(("unverified", "dropped")))
    if dropped:
        line += f" · {dropped} unverifiable quote(s) dropped"
    if meta.tokens_in or meta.tokens_out:
        line += f" · tokens {meta.tokens_in} in / {meta.tokens_out} out · ${meta.cost_usd:.4f}"
    line += f" · {meta.latency_s:.2f} s · settings {meta.settings_hash}"
    console.print(f"\n[dim]{line}[/]")
    for warning in meta.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _short(text: str, width: int = 220) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_claim_stances(console: Console, claim: str, rows: Sequence[ClaimStanceResult]) -> None:
    table = Table(title=f"Stance toward: {escape(claim)}", show_lines=True, expand=True)
    table.add_column("source", ratio=1)
    table.add_column("date", ratio=1)
    table.add_column("stance", ratio=1)
    table.add_column("evidence", ratio=5)
    for row in rows:
        colour = STANCE_COLOURS.get(row.label, "white")
        evidence = quote_line(row.evidence, width=260) if row.evidence else "[dim]-[/]"
        table.add_row(
            escape(row.source),
            escape(row.date or "undated"),
            f"[{colour}]{row.label}[/] {row.confidence:.2f}",
            evidence,
        )
    console.print(table)
