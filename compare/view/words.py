"""The words a reader sees: positions, tone, dates, source names, confidences, and a colour per source.

Every renderer takes its labels from here (through the view model), so "backs it" or "not enough evidence"
reads the same in the terminal, the Markdown, the HTML page, the report and the app.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

from compare.types import POSITION_OF_STANCE, PositionLabel

#: A position toward a claim, said of its source ("backs it · 0.86").
POSITION_WORDS: dict[str, str] = {
    "backs": "backs it",
    "disputes": "disputes it",
    "reports": "reports it without taking a side",
    "not_addressed": "does not address it",
}
#: The same in the past, for a change over time; `{it}` is the claim the first time, "it" after that.
POSITION_PAST: dict[str, str] = {
    "backs": "backed {it}",
    "disputes": "disputed {it}",
    "reports": "reported {it} without taking a side",
    "not_addressed": "did not address {it}",
}
NOT_ENOUGH = "not enough evidence"
#: A model-given label that the local claim-stance model read otherwise on its own quotes (the judgement gate).
CONTESTED = "contested by the local model"
#: Omission states: one model for every renderer.
OMISSION_WORDS: dict[str, str] = {
    "addresses": "addresses it",
    "not_addressed": "does not address it",
    "unknown": NOT_ENOUGH,
}
#: Timeline rows, top to bottom: positions first, then tone (for comparisons without positions).
ROW_WORDS: dict[str, str] = {
    "backs": "backs it",
    "reports": "reports, no side",
    "not_addressed": "does not address it",
    "disputes": "disputes it",
    "unsure": NOT_ENOUGH,
    "tone:positive": "tone: positive",
    "tone:mixed": "tone: mixed",
    "tone:neutral": "tone: neutral",
    "tone:not_addressed": "tone: not addressed",
    "tone:negative": "tone: negative",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Words kept lower-case when a source key is made readable ("department_of_defense" -> "Department of Defense").
_SMALL_WORDS = frozenset({"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to", "via"})
#: Categorical colours (Tableau 10: ten hues that stay apart); a source's colour comes from a hash of its key.
SOURCE_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def as_position(label: str) -> PositionLabel | None:
    """A position label, from a position or a claim-stance label; None for a tone label."""
    if label in POSITION_WORDS:
        return label  # type: ignore[return-value]
    return POSITION_OF_STANCE.get(label)


def label_words(label: str) -> str:
    """Any label a result may carry, in words: positions as positions, tone labelled as tone."""
    position = as_position(label)
    return POSITION_WORDS[position] if position else f"tone: {label.replace('_', ' ')}"


def past_words(label: str, it: str) -> str:
    """A label in the past about `it`: "backed “X”", or for tone "wrote about “X” in a negative tone"."""
    position = as_position(label)
    if position:
        return POSITION_PAST[position].format(it=it)
    return f"wrote about {it} in a {label.replace('_', ' ')} tone"


def tone_text(label: str, confidence: float, low: bool) -> str:
    """ "Tone: positive 0.62", never a stance or a position."""
    return f"Tone: {label.replace('_', ' ')} {confidence:.2f}" + (" (low confidence)" if low else "")


def human_date(iso: str | None) -> str:
    """ "2024-01-05" -> "5 Jan 2024"; "2024-01" -> "Jan 2024"; None -> "undated"; anything else as given."""
    if not iso:
        return "undated"
    text = iso.strip()
    try:
        if len(text) >= 10:
            day = date.fromisoformat(text[:10])
            return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
        if re.fullmatch(r"\d{4}-\d{2}", text) and 1 <= int(text[5:]) <= 12:
            return f"{_MONTHS[int(text[5:]) - 1]} {text[:4]}"
    except ValueError:
        return text
    return text


def on_date(iso: str | None) -> str:
    return f"on {human_date(iso)}" if iso else "in an undated document"


def date_range(first: str | None, last: str | None) -> str:
    start, end = first or last, last or first
    if not start or not end:
        return "undated"
    return human_date(start) if start == end else f"{human_date(start)} – {human_date(end)}"


def readable_key(key: str) -> str:
    """A source key for people: "department_of_defense" -> "Department of Defense"."""
    parts = [p for p in re.split(r"[_\-\s]+", key.strip()) if p]
    if not parts:
        return key
    words = [p if p.lower() in _SMALL_WORDS and i else p[:1].upper() + p[1:] for i, p in enumerate(parts)]
    return " ".join(words)


def human_join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary, with … when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + " …"


def confidence_text(value: float) -> str:
    """ "confidence 0.81"; empty for 0, which older comparisons carry for "not measured"."""
    return f"confidence {value:.2f}" if value > 0 else ""


def source_colour(key: str) -> str:
    """The same colour for a source in every comparison: a hash of its key, not its place in a list."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return SOURCE_PALETTE[int.from_bytes(digest[:4], "big") % len(SOURCE_PALETTE)]


def source_colours(keys: list[str]) -> dict[str, str]:
    """Each source's hashed colour; two sources of one list that hash alike are told apart by moving the
    later key (in sorted order) to the next free colour, so only such a collision can move a colour."""
    taken: dict[str, str] = {}
    for key in sorted(set(keys)):
        start = SOURCE_PALETTE.index(source_colour(key))
        used = set(taken.values())
        for step in range(len(SOURCE_PALETTE)):
            colour = SOURCE_PALETTE[(start + step) % len(SOURCE_PALETTE)]
            if colour not in used or step == len(SOURCE_PALETTE) - 1:
                taken[key] = colour
                break
    return {key: taken[key] for key in keys}
