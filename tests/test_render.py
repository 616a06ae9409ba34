"""compare.render: every export escapes article/model text, quotes are highlighted in their paragraph."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest
from rich.console import Console

from compare import render
from compare.evaluation.html_report import _answer as eval_drill_down
from compare.terminal import print_comparison
from compare.types import (
    Agreement,
    Claim,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Omission,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourceView,
    Stance,
)
from compare.view import build_view, quote_context, safe_url
from compare.view.quotes import QuoteMaker, key_quotes
from compare.view.timeline import ordered_rows
from tests.comparisons import documents as judged_documents
from tests.comparisons import judged_comparison

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> [click](javascript:alert(1)) $x$ | =cmd'
TEXT_A = (
    "Officials met on Monday.\n\nThe administration now backs longer-range strikes, a reversal of its earlier "
    f"refusal. {EVIL} It said so in a statement.\n\nA last paragraph."
)
TEXT_B = "The ministry said it had always supported the talks and would keep doing so, without conditions."


def _quote(doc: Document, needle: str, status: str = "verified") -> Quote:
    start = doc.text.index(needle)
    return Quote(doc_id=doc.id, source=doc.source, date=doc.date, char_start=start,
                 char_end=start + len(needle), text=needle, status=status)  # type: ignore[arg-type]  # fmt: skip


def _documents() -> dict[str, Document]:
    a = Document(id="a1", source="paper<b>", title=f"Title {EVIL}", date="2024-11-26",
                 url="javascript:alert(1)", text=TEXT_A)  # fmt: skip
    b = Document(id="b1", source="ministry", title="Statement", date="2023-05-02",
                 url="https://example.org/b?x=1&y=2", text=TEXT_B)  # fmt: skip
    return {a.id: a, b.id: b}


def make_comparison() -> Comparison:
    docs = _documents()
    a, b = docs["a1"], docs["b1"]
    qa = _quote(a, "The administration now backs longer-range strikes")
    qa_evil = _quote(a, EVIL)
    qb = _quote(b, "would keep doing so, without conditions", status="repaired")
    earlier = Quote(doc_id="a1", source=a.source, date=None, char_start=0, char_end=24,
                    text=TEXT_A[:24], status="verified")  # fmt: skip
    views = [
        SourceView(source=a.source, outlet="Paper & Co", documents=[DocRef(doc_id="a1", title=a.title)],
                   first_date="2024-11-26", last_date="2024-11-26", summary=f"Summary {EVIL}",
                   summary_quotes=[qa, qa_evil],
                   stance=Stance(label="mixed", target="strikes", confidence=0.31, low_confidence=True),
                   claims=[Claim(id="c1", text=f"claim {EVIL}", quotes=[qa])]),
        SourceView(source=b.source, documents=[DocRef(doc_id="b1")], first_date="2023-05-02",
                   last_date="2023-05-02", summary=qb.text, summary_quotes=[qb],
                   stance=Stance(label="positive", target="strikes", confidence=0.9)),
    ]  # fmt: skip
    shift = Shift(source=a.source, topic="strikes", description=f"refusal -> support {EVIL}",
                  before=ShiftPoint(date=None, stance="negative", quote=earlier),
                  after=ShiftPoint(date="2024-11-26", stance="positive", quote=qa))  # fmt: skip
    return Comparison(
        question=f"How did it change? {EVIL}",
        target="strikes",
        sources=views,
        shifts=[shift],
        agreements=[Agreement(claim=f"agree {EVIL}", sources=[a.source, b.source], quotes=[qa, qb])],
        differences=[Difference(claim="talks", positions=[Position(source=b.source, position="agree", quotes=[qb])])],
        omissions=[Omission(claim=f"omitted {EVIL}", reported_by=[a.source], not_reported_by=[b.source])],
        meta=ComparisonMeta(backend="offline", settings_hash="abc123", package_version="0.1.0",
                            created_at="2026-01-02T03:04:05Z", warnings=[f"warn {EVIL}"]),
    )  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(markup)
    return parser.tags


def _quote_html(text: str, start: int, end: int) -> str:
    doc = Document(id="d", source="s", text=text)
    quote = Quote(
        doc_id="d", source="s", char_start=start, char_end=end, text=text[start:end], status="verified"
    )
    return render.fragment("quote", QuoteMaker({"d": doc}, {})(quote))


def test_highlight_marks_the_span_inside_its_paragraph_and_escapes() -> None:
    start = TEXT_A.index("<script>")
    end = start + len("<script>")
    out = _quote_html(TEXT_A, start, end)
    context = out[out.index('<p class="nc-context">') : out.index("</p>") + 4]
    assert "<mark>&lt;script&gt;</mark>" in context
    assert "Officials met" not in context and "last paragraph" not in context  # only the quote's paragraph
    assert out.count("<mark>") == 1 and "<script>" not in out and "<img" not in out
    assert {tag for tag, _ in _tags(context)} == {"p", "mark"}


def test_context_is_clipped_at_word_boundaries_on_long_paragraphs() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    start = text.index("word200")
    ctx = quote_context(text, start, start + len("word200"), max_chars=50)
    assert ctx.cut_before and ctx.cut_after and ctx.span == "word200"
    assert len(ctx.before) <= 50 and not ctx.before.startswith("ord")
    out = _quote_html(text, start, start + 7)
    assert '<p class="nc-context">… ' in out and " …</p>" in out


@pytest.mark.parametrize("span", [(-1, 3), (5, 2), (0, len(TEXT_B) + 1)])
def test_context_refuses_spans_outside_the_text(span: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="outside"):
        quote_context(TEXT_B, *span)


def test_html_report_is_self_contained_and_shows_injected_markup_as_text() -> None:
    comparison = make_comparison()
    page = render.to_html(comparison, _documents())
    tags = _tags(page)
    names = {tag for tag, _ in tags}
    assert "script" not in names and "img" not in names and "iframe" not in names
    assert not any(k.startswith("on") for _, attrs in tags for k in attrs)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # markupsafe writes " as &#34;
    links = [attrs.get("href") for tag, attrs in tags if tag == "a"]
    assert links and all(str(link).startswith("https://") for link in links)  # javascript: URL dropped
    assert not re.search(r"(src|href)=\"?https?://(?!example\.org)", page)  # nothing loaded from outside
    assert page.count('class="nc-source"') == 2
    assert "<svg" in page and page.count("<circle") == 1  # the undated shift end is not drawn
    assert "Tone: mixed 0.31 (low confidence)" in page and "≈ repaired" in page and "✓ verified" in page
    assert "<mark>" in page  # quotes expand to their highlighted paragraph


def test_markdown_escapes_links_images_html_and_math() -> None:
    text = render.to_markdown(make_comparison(), _documents())
    assert not re.search(r"(?<!\\)<(script|img|/?b>)", text)  # every < is escaped
    assert "\\<script\\>" in text and "\\[click\\](javascript:alert(1))" in text and "\\$x\\$" in text
    assert (
        "## Sources side by side" in text
        and "### Paper \\& Co (paper\\<b\\>)" in text
        and "### Ministry" in text
    )
    assert "Tone: mixed 0.31 (low confidence)" in text and "| claim | Paper \\& Co | Ministry |" in text
    assert "Statement <https://example.org/b?x=1&y=2>" in text  # http(s) links as autolinks, others dropped
    assert "javascript:alert(1)>" not in text


def test_escape_markdown_neutralises_list_and_heading_starts() -> None:
    assert render.escape_markdown("# title") == "\\# title"
    assert render.escape_markdown("- item") == "\\- item"
    assert (
        render.escape_markdown("1. item") == "1\\. item" or render.escape_markdown("1. item") == "\\1. item"
    )
    assert render.escape_markdown("a\nb") == "a b"


def test_csv_has_one_row_per_source_and_guards_formulas() -> None:
    comparison = make_comparison()
    comparison.sources[1].outlet = "=HYPERLINK(evil)"
    rows = list(csv.DictReader(io.StringIO(render.to_csv(comparison))))
    assert [r["source"] for r in rows] == ["paper<b>", "ministry"]
    paper, ministry = rows
    assert (
        paper["tone"] == "mixed"
        and paper["tone_low_confidence"] == "True"
        and paper["tone_confidence"] == "0.31"
    )
    assert paper["position"] == "" and paper["outlet"] == "Paper & Co"  # no proposition: no position
    assert paper["quotes_verified"] == "3" and paper["shifts"] == "1"  # distinct spans: qa, qa_evil, earlier
    assert ministry["quotes_repaired"] == "1" and ministry["quotes_verified"] == "0"
    assert ministry["outlet"] == "'=HYPERLINK(evil)"
    assert paper["settings_hash"] == "abc123" and paper["backend"] == "offline"


def test_json_round_trips() -> None:
    comparison = make_comparison()
    assert Comparison.model_validate(json.loads(render.to_json(comparison))) == comparison


def test_timeline_skips_undated_ends_and_bands_cover_dated_sources() -> None:
    timeline = build_view(make_comparison()).timeline
    assert timeline.undated == 1 and [(d.end, d.date, d.row) for d in timeline.dots] == [
        ("after", "2024-11-26", "tone: positive")
    ]
    assert [(b.source, b.row, b.dashed) for b in timeline.bands] == [("paper<b>", "tone: mixed", True),
                                                                     ("ministry", "tone: positive", False)]  # fmt: skip
    assert ordered_rows(["tone:negative", "tone:positive", "weird", "tone:mixed", "backs"]) == [
        "backs it",
        "tone: positive",
        "tone: mixed",
        "tone: negative",
        "weird",
    ]


def test_key_quotes_are_unique_and_skip_unverified() -> None:
    view = make_comparison().sources[0]
    view.claims[0].quotes.append(view.summary_quotes[0].model_copy(update={"status": "unverified"}))
    quotes = key_quotes(view)
    assert len(quotes) == 2 and all(q.status != "unverified" for q in quotes)


def test_safe_url_only_allows_http_links() -> None:
    assert safe_url("https://example.org/x") == "https://example.org/x"
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "http://", None, ""):
        assert safe_url(bad) is None


# -- one view, every renderer -------------------------------------------------------------------------------


class _Text(HTMLParser):
    """The visible text of a page, whitespace collapsed (what a reader sees)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "title", "svg")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "title", "svg")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def _terminal(comparison: Comparison, documents: dict[str, Document]) -> str:
    console = Console(record=True, width=1000, color_system=None)
    print_comparison(console, comparison, documents)
    return console.export_text()


def test_terminal_markdown_and_html_show_the_same_judgements() -> None:
    """The drift this fixes: every renderer shows the view's position words and omission states."""
    comparison, docs = judged_comparison(), judged_documents()
    view = build_view(comparison, docs)
    expected = {cell.text for row in view.claims for cell in row.cells}
    expected |= {c.position.text for c in view.columns if c.position} | {c.tone_text for c in view.columns}
    expected |= {cell.text for row in view.omissions for cell in row.cells}
    expected |= {s.sentence for s in view.shifts} | {d.strength_text for d in view.differences}
    assert {
        "backs it · 0.86",
        "not enough evidence (0.41)",
        "addresses it",
        "opposed",
        "weaker contrast",
    } <= expected
    assert "does not address it (checked 3 stored documents)" in expected
    outputs = {
        "terminal": _terminal(comparison, docs),
        "markdown": render.to_markdown(comparison, docs),
        "html": _visible(render.to_html(comparison, docs)),
        "eval drill-down": _visible(eval_drill_down(comparison.model_dump(mode="json"))),
    }
    for name, text in outputs.items():
        missing = sorted(words for words in expected if words not in text)
        assert not missing, f"{name} lacks {missing}"
        assert "positive ->" not in text and "stance" not in text.lower(), name
    states = [[cell.text for cell in row.cells] for row in view.omissions]
    assert states == [["addresses it", "addresses it", "does not address it (checked 3 stored documents)"]]


def test_judged_page_shows_the_answer_first_and_escapes_nothing_twice() -> None:
    page = render.to_html(judged_comparison(), judged_documents())
    text = _visible(page)
    assert text.index("Answer") < text.index("Sources side by side") < text.index("Positions on each claim")
    assert page.count('class="nc-source"') == 3 and 'data-source="department_of_defense"' in page
    assert "<h3>U.S. Department of Defense</h3>" in page and "<h3>department_of_defense" not in page
    assert (
        "<h3>The Washington Post</h3>" in page and "<h3>Blog X</h3>" in page
    )  # outlet, else the key readable
    assert "&amp;amp;" not in page and "&amp;#34;" not in page
    assert page.count("<circle") == 6 and "stroke-dasharray" in page  # unsure position: a dashed band


def test_bare_urls_from_articles_are_not_linked_in_markdown() -> None:
    from compare.render.markdown import escape_markdown

    text = escape_markdown("see https://evil.example/x, www.evil.com and bob@evil.com; U.S. 3.5")
    assert "https\\://evil.example/x" in text and "www\\.evil.com" in text and "bob\\@evil.com" in text
    assert "U.S. 3.5" in text


def test_terminal_says_no_change_of_position_instead_of_an_empty_table() -> None:
    comparison = judged_comparison().model_copy(update={"shifts": []})
    text = _terminal(comparison, judged_documents())
    assert "Change over time" in text and "No change of position found." in text
    assert "what changed" not in text
