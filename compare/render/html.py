"""HTML of a comparison view: Jinja2 templates (compare/templates/) with autoescape, one CSS file.

The single escape path is Jinja's autoescape: templates receive plain text from the view and never build
markup from strings in Python. `page` is the self-contained page (inline CSS and SVG, no script, no external
resource); `fragment` returns one macro's markup for the app, the report and the eval drill-down.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from compare.render.svg import layout_timeline
from compare.view.model import ComparisonView, SectionKey, SourceColumn


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("compare", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["timeline_layout"] = layout_timeline
    env.filters["breakable"] = breakable
    return env


def breakable(name: object) -> Markup:
    """Escaped text that may wrap after _ - . / (long source keys in narrow table cells)."""
    return Markup(re.sub(r"([_\-./])", r"\1<wbr>", str(escape(name))))


@cache
def css() -> str:
    """The one stylesheet of the comparison page, the report and the app."""
    loader = environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(environment(), "style.css")
    return source


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def fragment(macro: str, *args: Any, **kwargs: Any) -> str:
    """One macro of macros.html, rendered: e.g. fragment("shifts", view)."""
    module = environment().get_template("macros.html").module
    result: Markup = getattr(module, macro)(*args, **kwargs)
    return str(result)


def to_html_view(view: ComparisonView) -> str:
    return render_template("comparison.html", view=view)


def section_html(view: ComparisonView, key: SectionKey, heading_level: int = 3) -> str:
    """A section's content (without its title and note), as every HTML output lays it out."""
    section = view.section(key)
    return "" if section is None else fragment("section_content", view, section, heading_level)


def source_card_html(column: SourceColumn) -> str:
    return fragment("source_card", column, 3)
