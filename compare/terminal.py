"""Rich terminal layout of a comparison view: the answer, sources side by side, positions on each claim,
shifts, agreements, differences, omissions and the footer, in the view's order and words.

Every string from an article or a model goes through `safe_markup` before rich sees it: its escape sequences and
control characters are removed (an article cannot recolour, retitle or clear the terminal, nor hide a link
behind OSC 8) and its `[bold]` is escaped, so it shows as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from compare.types import ClaimStanceResult, Comparison, Document, Quote
from compare.view import ComparisonView, build_view
from compare.view.model import Judgement, OmissionCell, QuoteView, SourceColumn

#: Escape sequences and control characters that would drive the terminal rather than show as text: CSI
#: (colours, cursor moves, clears), OSC/DCS/SOS/PM/APC strings (hyperlinks, window titles), any other ESC
#: sequence, and the remaining C0/C1 controls and DEL; tab and newline stay.
_TERMINAL_CONTROLS = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def terminal_text(text: str) -> str:
    """Stored or model text made safe to print: escape sequences and control characters removed."""
    return _TERMINAL_CONTROLS.sub("", text)


def safe_markup(text: str) -> str:
    """Text for a rich markup string that shows it literally: terminal controls removed, `[tags]` escaped."""
    return escape(terminal_text(text))


#: Colours of judgement and omission states (claim-stance labels for `ncompare stance`).
STATE_COLOURS = {
    "backs": "green",
    "disputes": "red",
    "reports": "cyan",
    "not_addressed": "dim",
    "unsure": "dim italic",
    "addresses": "green",
    "unknown": "dim italic",
    "agree": "green",
    "disagree": "red",
    "discuss": "cyan",
    "unrelated": "dim",
}
STATUS_MARKS = {"verified": "[green]✓ verified[/]", "repaired": "[yellow]≈ repaired[/]"}
#: Width of one source column; the terminal fits as many side by side as it can.
COLUMN_WIDTH = 48


def quote_line(quote: QuoteView, *, width: int = 240) -> str:
    """A quote as it is shown: its stored text, status, date, and where it sits."""
    mark = STATUS_MARKS.get(quote.status, "[red]✗ unverified[/]")
    where = f"{quote.date_text or 'undated'} · {quote.where}"
    return f"“{safe_markup(_short(quote.text, width))}” [dim]{safe_markup(where)}[/] {mark}"


def judgement_markup(judgement: Judgement) -> str:
    colour = STATE_COLOURS.get(judgement.state, "white")
    detail = f" [dim]({safe_markup(judgement.detail)})[/]" if judgement.detail else ""
    return f"[{colour}]{safe_markup(judgement.text)}[/]{detail}{check_markup(judgement.check_text)}"


def check_markup(text: str) -> str:
    """A contested label's note on its own line ("" when none)."""
    return f"\n[yellow]{safe_markup(text)}[/]" if text else ""


def omission_markup(cell: OmissionCell) -> str:
    return f"[{STATE_COLOURS.get(cell.state, 'white')}]{safe_markup(cell.text)}[/]"


def source_panel(column: SourceColumn) -> Panel:
    key = f"{safe_markup(column.key)} · " if column.show_key else ""
    lines = [f"[dim]{key}{safe_markup(column.documents_text)}, {safe_markup(column.dates_text)}[/]"]
    if column.position is not None:
        lines.append(f"Position: {judgement_markup(column.position)}")
        lines += [f"  {quote_line(column.position.quote, width=180)}"] if column.position.quote else []
    lines.append(f"[dim]{safe_markup(column.tone_text)}[/]")
    parts: list[RenderableType] = [Text.from_markup("\n".join(lines), emoji=False)]
    if column.summary:
        parts.append(Text.from_markup(f"\n{safe_markup(column.summary)}", emoji=False))
    if column.quotes:
        parts.append(Text.from_markup("\n[bold]Key quotes[/]"))
        parts.extend(Text.from_markup(f"• {quote_line(q, width=180)}", emoji=False) for q in column.quotes)
    title = f"[bold]{safe_markup(column.name)}[/]" + (
        f" [dim]({safe_markup(column.key)})[/]" if column.show_key else ""
    )
    return Panel(Group(*parts), title=title, width=COLUMN_WIDTH, border_style=column.colour)


def print_comparison(
    console: Console, comparison: Comparison, documents: Mapping[str, Document] | None = None
) -> None:
    print_view(console, build_view(comparison, documents))


def print_view(console: Console, view: ComparisonView) -> None:
    console.rule(f"[bold]{safe_markup(view.question)}")
    console.print(f"[dim]{safe_markup(view.target_line)}[/]")
    for section in view.sections:
        console.print(f"\n[bold underline]{safe_markup(section.title)}[/]")
        if section.note:
            console.print(f"[dim]{safe_markup(section.note)}[/]")
        if section.empty:
            console.print(f"[dim]{safe_markup(section.empty)}[/]")
        else:
            _SECTIONS[section.key](console, view)
    _print_footer(console, view)


def _print_answer(console: Console, view: ComparisonView) -> None:
    for line in view.answer:
        console.print(safe_markup(line.text))
        for quote in line.quotes:
            console.print(f"  [dim]↳[/] {quote_line(quote, width=160)}")


def _print_sources(console: Console, view: ComparisonView) -> None:
    console.print(Columns([source_panel(column) for column in view.columns], equal=True))


def _print_claims(console: Console, view: ComparisonView) -> None:
    table = _matrix(view.columns, show_lines=True)
    for row in view.claims:
        claim = f"[dim]{safe_markup(row.heading)}[/]\n{safe_markup(_short(row.text))}"
        cells = [
            judgement_markup(cell) + (f"\n{quote_line(cell.quote, width=120)}" if cell.quote else "")
            for cell in row.cells
        ]
        table.add_row(claim, *cells)
    console.print(table)


NO_SHIFT = "No change of position found."


def _print_shifts(console: Console, view: ComparisonView) -> None:
    if not view.shifts:  # the section has a timeline (other renderers draw it) but no shift to list
        console.print(f"[dim]{safe_markup(NO_SHIFT)}[/]")
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("what changed", ratio=3)
    table.add_column("before", ratio=3)
    table.add_column("after", ratio=3)
    for shift in view.shifts:
        meta = " · ".join(x for x in (shift.kind_text, shift.confidence_text) if x)
        table.add_row(
            f"[bold]{safe_markup(shift.name)}[/] {safe_markup(shift.sentence)}\n[dim]{safe_markup(meta)}[/]"
            + check_markup(shift.check_text),
            *(
                f"[dim]{safe_markup(end.words)}[/] {quote_line(end.quote, width=200)}"
                for end in (shift.before, shift.after)
            ),
        )
    console.print(table)


def _print_agreements(console: Console, view: ComparisonView) -> None:
    table = Table(show_lines=True, expand=True)
    table.add_column("claim", ratio=2)
    table.add_column("sources", ratio=1)
    table.add_column("quotes", ratio=3)
    for agreement in view.agreements:
        confidence = (
            f"\n[dim]{safe_markup(agreement.confidence_text)}[/]" if agreement.confidence_text else ""
        )
        table.add_row(
            safe_markup(_short(agreement.claim)) + confidence + check_markup(agreement.check_text),
            safe_markup(agreement.sources_text),
            "\n".join(
                f"[bold]{safe_markup(q.source_name)}[/]: {quote_line(q, width=140)}" for q in agreement.quotes
            ),
        )
    console.print(table)


def _print_differences(console: Console, view: ComparisonView) -> None:
    table = Table(show_lines=True, expand=True)
    table.add_column("claim", ratio=2)
    table.add_column("positions", ratio=4)
    for difference in view.differences:
        meta = " · ".join(x for x in (difference.strength_text, difference.confidence_text) if x)
        lines = []
        for side in difference.sides:
            colour = STATE_COLOURS.get(side.state, "white")
            quote = f" {quote_line(side.quotes[0], width=140)}" if side.quotes else ""
            words = f"[{colour}]{safe_markup(side.words)}[/]"
            lines.append(f"[bold]{safe_markup(side.name)}[/]: {words}{quote}{check_markup(side.check_text)}")
        table.add_row(
            f"{safe_markup(_short(difference.claim))}\n[dim]{safe_markup(meta)}[/]", "\n".join(lines)
        )
    console.print(table)


def _print_omissions(console: Console, view: ComparisonView) -> None:
    table = _matrix(view.columns)
    for row in view.omissions:
        table.add_row(safe_markup(_short(row.claim)), *(omission_markup(cell) for cell in row.cells))
    console.print(table)


def _matrix(columns: Sequence[SourceColumn], *, show_lines: bool = False) -> Table:
    table = Table(expand=True, show_lines=show_lines)
    table.add_column("claim", ratio=3)
    for column in columns:
        table.add_column(safe_markup(column.name), justify="center", ratio=2)
    return table


def _print_footer(console: Console, view: ComparisonView) -> None:
    footer = view.footer
    console.print(f"\n[dim]{safe_markup(footer.meta_line)} · {safe_markup(footer.quotes_line)}[/]")
    if footer.labels_line:
        console.print(f"[dim]{safe_markup(footer.labels_line)}[/]")
    if footer.filters_line:
        console.print(f"[dim]filters: {safe_markup(footer.filters_line)}[/]")
    if footer.missing_sources:
        console.print(
            f"[dim]No passage matched the question in: {safe_markup(', '.join(footer.missing_sources))}[/]"
        )
    for warning in footer.warnings:
        console.print(f"[yellow]warning:[/] {safe_markup(warning)}")


_SECTIONS: dict[str, Callable[[Console, ComparisonView], None]] = {
    "answer": _print_answer,
    "sources": _print_sources,
    "claims": _print_claims,
    "time": _print_shifts,
    "agreements": _print_agreements,
    "differences": _print_differences,
    "omissions": _print_omissions,
}


def _short(text: str, width: int = 220) -> str:
    """One line of at most `width` characters; controls go first, so a cut never splits an escape sequence."""
    flat = " ".join(terminal_text(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _claim_quote_line(quote: Quote) -> str:
    mark = STATUS_MARKS.get(quote.status, "[red]✗ unverified[/]")
    where = f"{quote.date or 'undated'} · {quote.doc_id}"
    return f"“{safe_markup(_short(quote.text, 260))}” [dim]{safe_markup(where)}[/] {mark}"


def print_claim_stances(console: Console, claim: str, rows: Sequence[ClaimStanceResult]) -> None:
    """`ncompare stance`: one document per row (agree / disagree / discuss / unrelated), with its evidence."""
    table = Table(title=f"Stance toward: {safe_markup(claim)}", show_lines=True, expand=True)
    table.add_column("source", ratio=1)
    table.add_column("date", ratio=1)
    table.add_column("stance", ratio=1)
    table.add_column("evidence", ratio=5)
    for row in rows:
        colour = STATE_COLOURS.get(row.label, "white")
        evidence = _claim_quote_line(row.evidence) if row.evidence else "[dim]-[/]"
        table.add_row(
            safe_markup(row.source),
            safe_markup(row.date or "undated"),
            f"[{colour}]{row.label}[/] {row.confidence:.2f}",
            evidence,
        )
    console.print(table)
