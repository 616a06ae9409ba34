"""Remove page furniture and normalise layout, producing the text every offset and quote refers to.

Furniture is found by mechanism, never by listing one site's sentences:

(a) ``FURNITURE_PATTERNS``: whole-line regexes for the usual boilerplate ("Read more", "Advertisement",
    "Share this article", "Sign up for our newsletter", "All rights reserved", cookie notices, correction
    notices, "press Ctrl + Enter", lines with no letters or digits such as "###").
(b) ``RepeatedLines``: short lines that occur in two or more documents of one source (footers, bylines,
    datelines).
(c) Headline-like lines (few words, no sentence-ending punctuation) that repeat inside the document or sit
    next to furniture (a run of them is dropped together).
(d) Related-story blocks: after a marker such as "Other Topics of Interest", "Related" or "Read also"
    standing on its own line, the headline-like line(s) under it and the single teaser paragraph under
    those are dropped.

Layout: \\r\\n becomes \\n; spaces and tabs collapse to one space; lines are stripped; every non-blank line
is a paragraph, and paragraphs are separated by exactly one blank line. Non-breaking and other fixed-width
spaces (U+00A0, U+2007, U+202F) become plain spaces and invisible characters (zero-width space, word joiner,
BOM, soft hyphen) are removed: this runs before any offset exists, and it lets a quote typed with ordinary
spaces match verbatim. Curly quotes, apostrophes and dashes are kept exactly as they are.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# Lines longer than this are prose, never furniture by pattern (keeps a real paragraph that happens to start
# with "Read more..." or mention cookies).
MAX_FURNITURE_WORDS = 40
# Headline-like: at most this many words and no sentence-ending punctuation.
MAX_HEADLINE_WORDS = 20
# A teaser under a related-story headline is at most this long; anything longer is kept as article text.
MAX_TEASER_WORDS = 80
# A document whose text (by characters) is at least this share of lines already seen in its source is a copy.
COPY_SHARE = 0.8
_SENTENCE_END = ".!?…:;,—–-"
_CLOSERS = "\"'”’»)]"

_RELATED = (
    r"other topics of interest",
    r"related(?: (?:stories|story|articles?|news|content|coverage|reading|posts|topics|links|videos))?",
    r"(?:read|see) (?:also|more|next)",
    r"more (?:on|about|from) this (?:story|topic|subject)",
    r"more stories",
    r"you (?:may|might) also (?:like|enjoy|be interested in)",
    r"(?:most (?:read|popular|viewed)|trending(?: now| stories)?|top stories|editor'?s picks)",
    r"recommended(?: for you| stories| reading)?",
)
# (d) markers standing alone on their line (a trailing colon or arrow is allowed).
RELATED_MARKERS = tuple(re.compile(rf"(?:{pattern})\s*[:.…»›>→-]?", re.IGNORECASE) for pattern in _RELATED)

_SOCIAL = r"(?:facebook|twitter|x|linkedin|whatsapp|telegram|reddit|e-?mail|print|copy link|pinterest)"
_NETWORKS = r"(?:facebook|twitter|x|instagram|telegram|linkedin|youtube|tiktok|threads|bluesky)"
_FURNITURE = (
    *(marker.pattern for marker in RELATED_MARKERS),
    r"(?:related|read also|read more|see also|read next)\s*:.*",  # inline "Read also: <headline>"
    r"to suggest a correction\b.*",
    r".*\bpress ctrl\s*\+\s*enter\b.*",
    r".*\bwrite to us here\b.*",
    r"advertisement|advertising|ad|sponsored(?: content)?|promoted(?: content)?|paid content",
    r"(?:story continues|article continues|continue reading|scroll to continue)\b.*",
    r"(?:sign up|subscribe|register)\b.*\b(?:newsletters?|updates|inbox|alerts|briefing)\b.*",
    r"subscribe(?: now| today| here)?[.!]?",
    r"follow us\b.*",
    rf"follow (?:\S+ ){{1,4}}on {_NETWORKS}\b.*",
    rf"share(?: this| the)?(?: article| story| post| page)?(?: (?:on|via) {_SOCIAL})?\s*:?",
    rf"(?:{_SOCIAL}[\s|·•,/]*){{2,}}",
    r"(?:©|\(c\)|copyright\s*(?:©|\(c\)|\d{4})).*",
    r".*\ball rights reserved\b.*",
    r"click here\b.*",
    r".*\b(?:we use cookies|this (?:web)?site uses cookies|accept (?:all )?cookies)\b.*",
    r".*\bcookie (?:policy|settings|preferences|consent)\b.*",
    r"(?:skip to (?:main )?content|back to top|jump to comments?|(?:show|load|view) (?:more )?comments)",
    r"(?:\d* ?comments?|print(?: this (?:article|page))?|email this (?:article|story))",
    r"(?:listen to|download) (?:this|the) (?:article|story|app|podcast)\b.*",
    r"(?:tags?|topics|filed under|categories)\s*:.*",
    r"(?:photo|image|video|illustration|graphic)s?(?: credit)?\s*:.{0,100}",
    r"(?:already a subscriber|log ?in|sign ?in)\b.{0,60}",
    r"(?:this|the) (?:article|story) is (?:only )?(?:available|reserved) (?:to|for) (?:subscribers|members)",
    r"(?:loading\.*|please enable javascript\b.*)",
    r"[\W_]+",  # no letters or digits at all: ###, ***, ---, •••
)
# (a) whole-line furniture patterns, matched case-insensitively against a normalised line.
FURNITURE_PATTERNS = tuple(re.compile(pattern, re.IGNORECASE) for pattern in _FURNITURE)

_SPACES = re.compile(r"[ \t\f\v]+")
# A sentence end glued to the next sentence's first word: a word of two or more letters or digits, . ! ? (and
# a closing quote or bracket), then a capitalised word; or "readout:Secretary". Initials ("U.S.Army", "p.m.")
# have one letter before the dot and titles ("Dr.Smith") are listed, so both are left alone.
_RUN_TOGETHER = re.compile(r"\b(\w{2,})([.!?][”’\"')\]]?|(?<=[a-z]{3}):)(?=[A-Z][a-z])")
_TITLES = frozenset(
    {"dr", "mr", "mrs", "ms", "st", "jr", "sr", "gen", "col", "lt", "sgt", "no", "vs", "prof", "rep"}
)
_FIXED_SPACES = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u202f": " "})
_INVISIBLE = str.maketrans({"\u200b": None, "\u2060": None, "\ufeff": None, "\u00ad": None})


@dataclass
class CleanResult:
    text: str
    removed: list[str] = field(default_factory=list)


def clean_text(text: str, *, repeated: frozenset[str] = frozenset()) -> CleanResult:
    """Drop furniture lines and normalise layout; `repeated` are lines known to repeat across a source."""
    lines = paragraphs(text)
    furniture = [is_furniture(line) or line in repeated for line in lines]
    drop = list(furniture)
    _drop_related_blocks(lines, drop)
    _drop_repeated_headlines(lines, drop)
    _drop_headlines_near_furniture(lines, furniture, drop)
    kept = [line for line, dropped in zip(lines, drop, strict=True) if not dropped]
    removed = [line for line, dropped in zip(lines, drop, strict=True) if dropped]
    return CleanResult(text="\n\n".join(kept), removed=removed)


def paragraphs(text: str) -> list[str]:
    """Normalised non-blank lines: each is one paragraph. Paragraphs a crawler ran together ("needs.To meet")
    are parted again first, so furniture stands on a line of its own and sentences end with a break."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("_x000D_", "\n")
    text = _RUN_TOGETHER.sub(_part, text.translate(_FIXED_SPACES).translate(_INVISIBLE))
    lines = (normalise_line(line) for line in text.split("\n"))
    return [line for line in lines if line]


def _part(match: re.Match[str]) -> str:
    word, end = match.group(1), match.group(2)
    return match.group(0) if word.lower() in _TITLES else f"{word}{end}\n"


def normalise_line(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def is_furniture(line: str) -> bool:
    if len(line.split()) > MAX_FURNITURE_WORDS:
        return False
    return any(pattern.fullmatch(line) for pattern in FURNITURE_PATTERNS)


def is_related_marker(line: str) -> bool:
    return any(pattern.fullmatch(line) for pattern in RELATED_MARKERS)


def is_headline_like(line: str) -> bool:
    """Few words and no sentence-ending punctuation: a headline, a label, a link, not a sentence."""
    if len(line.split()) > MAX_HEADLINE_WORDS:
        return False
    stripped = line.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] not in _SENTENCE_END


def _drop_related_blocks(lines: list[str], drop: list[bool]) -> None:
    """(d) marker -> headline-like line(s) -> one teaser paragraph, all dropped."""
    for index, line in enumerate(lines):
        if not is_related_marker(line):
            continue
        cursor = index + 1
        headlines = 0
        while cursor < len(lines) and (is_headline_like(lines[cursor]) or is_furniture(lines[cursor])):
            headlines += is_headline_like(lines[cursor]) and not is_furniture(lines[cursor])
            drop[cursor] = True
            cursor += 1
        if headlines and cursor < len(lines) and len(lines[cursor].split()) <= MAX_TEASER_WORDS:
            drop[cursor] = True


def _drop_repeated_headlines(lines: list[str], drop: list[bool]) -> None:
    """(c) a headline-like line that occurs twice in one document is a link or a label, not article text."""
    counts = Counter(line for line in lines if is_headline_like(line))
    for index, line in enumerate(lines):
        if counts[line] >= 2:
            drop[index] = True


def _drop_headlines_near_furniture(lines: list[str], furniture: list[bool], drop: list[bool]) -> None:
    """(c) runs of headline-like lines directly before or after a furniture line go with it."""
    for index, is_furn in enumerate(furniture):
        if not is_furn:
            continue
        for step in (-1, 1):
            cursor = index + step
            while 0 <= cursor < len(lines) and not furniture[cursor] and is_headline_like(lines[cursor]):
                drop[cursor] = True
                cursor += step


class RepeatedLines:
    """Counts, per source, in how many documents each short line occurs; lines in >= `min_documents` of them
    are furniture.

    Feed it every document of a window (`observe`) before cleaning them with `furniture_for(source)`. A
    document that is mostly (by characters) lines already seen in that source is a copy (a re-run, or a
    syndicated duplicate) and is not counted, so text shared by two copies is never mistaken for furniture.
    """

    def __init__(
        self, *, min_documents: int = 2, max_words: int = 30, max_lines_per_source: int = 50_000
    ) -> None:
        self.min_documents = min_documents
        self.max_words = max_words
        self.max_lines_per_source = max_lines_per_source
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._seen: dict[str, set[int]] = defaultdict(set)

    def observe(self, source: str, text: str) -> None:
        lines = set(paragraphs(text))
        if not lines or self._is_copy(source, lines):
            return
        seen = self._seen[source]
        if len(seen) > 40 * self.max_lines_per_source:
            seen.clear()  # bound memory; at worst a later copy of an old document goes unrecognised
        seen.update(hash(line) for line in lines)
        counts = self._counts[source]
        counts.update(line for line in lines if len(line.split()) <= self.max_words)
        if len(counts) > self.max_lines_per_source:
            # Bound memory on long runs: lines seen once are the many, and the least likely furniture.
            for line in [line for line, count in counts.items() if count < self.min_documents]:
                del counts[line]

    def furniture_for(self, source: str) -> frozenset[str]:
        counts = self._counts.get(source, Counter())
        return frozenset(line for line, count in counts.items() if count >= self.min_documents)

    def _is_copy(self, source: str, lines: set[str]) -> bool:
        seen = self._seen[source]
        shared = sum(len(line) for line in lines if hash(line) in seen)
        return shared >= COPY_SHARE * sum(len(line) for line in lines)
