"""One view of a comparison for every renderer (house style rule 13).

`build_view(comparison, documents)` decides what to show, in which order and in which words: the answer,
per-source columns (position toward the question, tone labelled as tone), the claims x sources matrix,
agreements, differences (opposed first), omissions (one state model), shifts ranked by confidence with a
reader's sentence, the timeline, and the footer. The terminal, Markdown, HTML, CSV, the app, batch reports and
the eval drill-down lay that view out; none of them reads a Comparison's judgements directly.

  words.py       labels, dates, names and colours
  quotes.py      quotes in their paragraph, key quotes, safe links
  model.py       the view's dataclasses
  judgements.py  positions in words, the claims matrix, agreements, differences, omission states
  shifts.py      shifts as a reader's sentences, ranked by confidence
  timeline.py    bands and dots, rows in words
  build.py       Comparison -> ComparisonView, sections in order
"""

from compare.view.build import build_view, filters_line, meta_line, source_names
from compare.view.model import ComparisonView, QuoteView, Section, SourceColumn, TimelineView
from compare.view.quotes import quote_context, quote_doc_ids, safe_url, unique_quotes
from compare.view.timeline import merge_timelines
from compare.view.words import human_date, source_colour, source_colours

__all__ = [
    "ComparisonView",
    "QuoteView",
    "Section",
    "SourceColumn",
    "TimelineView",
    "build_view",
    "filters_line",
    "human_date",
    "merge_timelines",
    "meta_line",
    "quote_context",
    "quote_doc_ids",
    "safe_url",
    "source_colour",
    "source_colours",
    "source_names",
    "unique_quotes",
]
