"""Words of a text for lexical matching: lower-cased words, a light stemmer, stopwords and cue-word families.

Used to choose the passage the stance model reads (`stance_passage.py`) and the sentence that shows a stance
(`stance_model.evidence_span`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

_STOPWORDS = frozenset(
    (
        "a about above after again against all am an and any are as at be because been before being below "
        "between both but by can did do does doing down during each few for from further had has have having "
        "he her here hers herself him himself his how i if in into is it its itself just me more most my "
        "myself now of off on once only or other our ours ourselves out over own same she should so some "
        "such than that the their theirs them themselves then there these they this those through to too "
        "under until up very was we were what when where which while who whom why will with you your yours "
        "yourself yourselves s t would also said says say new one two"
    ).split()
)
STOPWORDS = _STOPWORDS
# Cue families, matched on lower-cased words (not stems). Order fixes the feature layout.
_CUES: dict[str, frozenset[str]] = {
    "refute": frozenset(
        (
            "fake faked fakes fraud fraudulent hoax hoaxes false falsely deny denies denied denying debunk "
            "debunked debunks debunking doubt doubts doubted doubtful bogus retract retracted retraction "
            "prank pranks pranked untrue myth refute refuted refutes dismissed dismisses rejected rejects "
            "baseless unfounded fabricated fabrication misleading satire satirical parody phony incorrect "
            "wrong nonsense lie lies lied despite nope"
        ).split()
    ),
    "negation": frozenset("not no never nor none nobody nothing neither without cannot".split()),
    "hedge": frozenset(
        (
            "reportedly allegedly alleged alleges purportedly purported apparently supposedly unconfirmed "
            "unverified rumor rumors rumour rumours rumored rumoured speculation speculated speculate may "
            "might could possibly possible perhaps appears appear seems seem suggests suggest suggested "
            "believed unclear unknown if whether claims claim claimed claiming"
        ).split()
    ),
    "report": frozenset(
        (
            "according reports reported report reporting told tweeted posted wrote writes stated states "
            "sources source spokesperson spokesman spokeswoman statement quoted cited via"
        ).split()
    ),
    "support": frozenset(
        (
            "confirmed confirms confirm confirming announced announces official officially revealed reveals "
            "indeed true truly proved proven proof verified definitely actually admitted admits acknowledged"
        ).split()
    ),
}
#: Public: cue word families by name (refute, negation, hedge, report, support).
CUE_WORDS: Mapping[str, frozenset[str]] = _CUES

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SUFFIXES = (
    "ational",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ings",
    "ing",
    "edly",
    "ies",
    "ied",
    "ed",
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'denies'/'denied'/'deny' without a lemmatiser."""
    word = word.removesuffix("'s")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased words; curly apostrophes folded so "isn’t" and "isn't" are one word."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def content_stems(tokens: Iterable[str]) -> list[str]:
    return [stem(token) for token in tokens if token not in _STOPWORDS and not token.endswith("n't")]
