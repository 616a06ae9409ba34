"""compare.render: every export escapes article/model text, quotes are highlighted in their paragraph."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from compare import render
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


def test_highlight_marks_the_span_inside_its_paragraph_and_escapes() -> None:
    start = TEXT_A.index("<script>")
    end = start + len("<script>")
    out = render.highlight_in_context(TEXT_A, start, end)
    assert "<mark>&lt;script&gt;</mark>" in out
    assert "Officials met" not in out and "last paragraph" not in out  # only the quote's paragraph
    assert out.count("<mark>") == 1 and "<script>" not in out and "<img" not in out
    assert {tag for tag, _ in _tags(out)} == {"p", "mark"}


def test_context_is_clipped_at_word_boundaries_on_long_paragraphs() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    start = text.index("word200")
    ctx = render.quote_context(text, start, start + len("word200"), max_chars=50)
    assert ctx.cut_before and ctx.cut_after and ctx.span == "word200"
    assert len(ctx.before) <= 50 and not ctx.before.startswith("ord")
    out = render.highlight_in_context(text, start, start + 7, max_chars=50)
    assert out.startswith('<p class="nc-context">… ') and out.endswith(" …</p>")


@pytest.mark.parametrize("span", [(-1, 3), (5, 2), (0, len(TEXT_B) + 1)])
def test_highlight_refuses_spans_outside_the_text(span: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="outside"):
        render.highlight_in_context(TEXT_B, *span)


def test_html_report_is_self_contained_and_shows_injected_markup_as_text() -> None:
    comparison = make_comparison()
    page = render.to_html(comparison, _documents())
    tags = _tags(page)
    names = {tag for tag, _ in tags}
    assert "script" not in names and "img" not in names and "iframe" not in names
    assert not any(k.startswith("on") for _, attrs in tags for k in attrs)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    links = [attrs.get("href") for tag, attrs in tags if tag == "a"]
    assert links and all(str(link).startswith("https://") for link in links)  # javascript: URL dropped
    assert not re.search(r"(src|href)=\"?https?://(?!example\.org)", page)  # nothing loaded from outside
    assert page.count('class="nc-source"') == 2
    assert "<svg" in page and page.count("<circle") == 1  # the undated shift end is not drawn
    assert "low confidence 0.31" in page and "≈ repaired" in page and "✓ verified" in page
    assert "<mark>" in page  # quotes expand to their highlighted paragraph


def test_markdown_escapes_links_images_html_and_math() -> None:
    text = render.to_markdown(make_comparison(), _documents())
    assert not re.search(r"(?<!\\)<(script|img|/?b>)", text)  # every < is escaped
    assert "\\<script\\>" in text and "\\[click\\](javascript:alert(1))" in text and "\\$x\\$" in text
    assert "## Sources side by side" in text and "### paper\\<b\\>" in text and "### ministry" in text
    assert "(low confidence)" in text and "| claim | paper\\<b\\> | ministry |" in text
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
    assert paper["stance"] == "mixed" and paper["low_confidence"] == "True" and paper["confidence"] == "0.31"
    assert paper["quotes_verified"] == "3" and paper["shifts"] == "1"  # distinct spans: qa, qa_evil, earlier
    assert ministry["quotes_repaired"] == "1" and ministry["quotes_verified"] == "0"
    assert ministry["outlet"] == "'=HYPERLINK(evil)"
    assert paper["settings_hash"] == "abc123" and paper["backend"] == "offline"


def test_json_round_trips() -> None:
    comparison = make_comparison()
    assert Comparison.model_validate(json.loads(render.to_json(comparison))) == comparison


def test_timeline_points_skip_undated_ends_and_spans_cover_dated_sources() -> None:
    comparison = make_comparison()
    points, undated = render.timeline_points(comparison)
    assert undated == 1 and [(p.end, p.date, p.stance) for p in points] == [
        ("after", "2024-11-26", "positive")
    ]
    spans = render.stance_spans(comparison)
    assert [(s.source, s.stance, s.low_confidence) for s in spans] == [("paper<b>", "mixed", True),
                                                                       ("ministry", "positive", False)]  # fmt: skip
    assert render.stance_domain(["negative", "positive", "weird", "mixed"]) == [
        "positive",
        "mixed",
        "negative",
        "weird",
    ]


def test_key_quotes_are_unique_and_skip_unverified() -> None:
    view = make_comparison().sources[0]
    view.claims[0].quotes.append(view.summary_quotes[0].model_copy(update={"status": "unverified"}))
    quotes = render.key_quotes(view)
    assert len(quotes) == 2 and all(q.status != "unverified" for q in quotes)


def test_safe_url_only_allows_http_links() -> None:
    assert render.safe_url("https://example.org/x") == "https://example.org/x"
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "http://", None, ""):
        assert render.safe_url(bad) is None
