"""Negated claims for training the stance model (`scripts/stance_data.py --negate`).

FNC-1 has few `disagree` pairs (741 in the training stories). An article that backs "X killed Y" disputes
"X never killed Y", and one that disputes it backs the negation; one that only reports it reports the negation
too. So each related training pair can give a second pair with the claim negated and the label mirrored
(agree <-> disagree, discuss stays). Because negated claims appear under every label, the model cannot learn
"a negated headline means disagree": it has to read the article against the claim.

Only headlines the rules below can negate grammatically are used; the others give nothing:
- an auxiliary takes "not": "Kim Jong-un is dead" -> "Kim Jong-un is not dead";
- a planned act: "Microsoft to buy Mojang" -> "Microsoft not to buy Mojang";
- a present-tense verb, when asked: "ISIS beheads journalist" -> "ISIS does not behead journalist";
- a past-tense verb: "Detainee killed Foley" -> "Detainee never killed Foley".
Headlines already negated, questions and those with no verb found are skipped.
"""

from __future__ import annotations

import re

MIRROR = {"agree": "disagree", "disagree": "agree", "discuss": "discuss", "unrelated": "unrelated"}

_AUX = re.compile(
    r"\b(is|are|was|were|will|would|has|have|had|can|could|should|must|may|might)\b(?!\s+(not|never)\b)",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(not|never|no|none|nobody|nothing)\b|n['\u2019]t\b", re.IGNORECASE)
_TO = re.compile(r"^(\S+(?:\s+[A-Z][\w'\u2019.-]*){0,3})\s+(to)\s+([a-z]\w+)")
_PRESENT = re.compile(
    r"(?<=\s)(?!(?:news|series|species|isis|this|its|us|his|business|congress|crisis|analysis|basis|virus|"
    r"status|campus|bonus|census|focus|gas|plus|bias|politics|economics|ethics|says)\b)"
    r"([a-z]{3,}?)(ies|ches|shes|sses|xes|zes|s)\s+(?!of\b|and\b|or\b|in\b|for\b|on\b|by\b|from\b)\S"
)
_PAST = re.compile(
    r"(?<=\s)(\w{3,}ed|ate|became|began|broke|brought|built|bought|caught|chose|fled|fought|found|gave|got|"
    r"held|kept|killed|left|lost|made|met|paid|ran|rose|said|sent|shot|sold|spent|stole|struck|took|told|"
    r"threw|won|wrote)\s+\S",
    re.IGNORECASE,
)


def negate(claim: str, *, present: bool = False) -> str | None:
    """The claim negated, or None when no rule applies safely. The present-tense rule is off by default: on
    FNC-1 headlines it mistakes plural nouns for verbs ("7 teen girls get" -> "7 teen does not girl get")."""
    text = claim.strip()
    if not text or text.endswith("?") or _NEGATED.search(text) or len(text.split()) < 3:
        return None
    if match := _auxiliary(text):
        return _insert(text, match.end(), " " + _cased("not", match.group(1)))
    if match := _TO.match(text):
        return _insert(text, match.start(2), _cased("not", match.group(2)) + " ")
    if present and (match := _after_subject(_PRESENT, text, capitalized=True)):
        stem, ending = match.group(1), match.group(2)
        base = stem + {"ies": "y", "ches": "ch", "shes": "sh", "sses": "ss", "xes": "x", "zes": "z"}.get(
            ending, ""
        )
        start = match.start(1)
        return text[:start] + f"does not {base}" + text[match.end(2) :]
    if match := _after_subject(_PAST, text, capitalized=False):
        word = match.group(1)
        return _insert(text, match.start(1), _cased("never", word) + " ")
    return None


_POSSESSION = re.compile(r"\b(has|have|had)\s+(?!been\b|\w+(ed|en)\b)\S", re.IGNORECASE)


def _auxiliary(text: str) -> re.Match[str] | None:
    """An auxiliary to put "not" after; "has" as a main verb ("Man has his ...") is not one."""
    return next((m for m in _AUX.finditer(text) if not _POSSESSION.match(text, m.start())), None)


_NOT_A_SUBJECT = frozenset(
    "a an the of to in on by for and or with at from as was were is are be been this that these those".split()
)


def _after_subject(rule: re.Pattern[str], text: str, *, capitalized: bool) -> re.Match[str] | None:
    """The first match whose previous word can end a subject: not a function word (and, for a present-tense
    verb, a capitalized name: "ISIS beheads", not "teen girls get")."""
    for match in rule.finditer(text):
        before = text[: match.start()].split()
        if not before or before[-1].lower() in _NOT_A_SUBJECT or before[-1][-1] in ",:;":
            continue
        if capitalized and not before[-1][:1].isupper():
            continue
        if len(before) - _prefix_words(text) > 4:  # deep in the headline: an adjective or an embedded clause
            continue
        return match
    return None


def _prefix_words(text: str) -> int:
    """Words of a "BREAKING:" / "Report:" style prefix."""
    head, colon, _ = text.partition(":")
    return len(head.split()) if colon and len(head.split()) <= 3 else 0


def _insert(text: str, at: int, piece: str) -> str:
    return text[:at] + piece + text[at:]


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word
