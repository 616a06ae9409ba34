"""Turn a raw item and its cleaned text into a `Document`: id, source, ISO date, metadata, length check."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from dateutil import parser as date_parser

from compare.ingest.readers import RawDocument
from compare.settings import IngestSettings
from compare.types import Document, MetadataValue, content_hash

KNOWN_FIELDS = ("id", "source", "outlet", "title", "date", "url", "text")
# Two different defaults: a part of the date that the value leaves out shows up as a difference.
_DEFAULT_A = datetime(2000, 1, 1)
_DEFAULT_B = datetime(2001, 2, 2)


def to_document(raw: RawDocument, clean: str, settings: IngestSettings) -> Document:
    """Build the Document; raise IngestError (naming the file, line or URL) when a field is unusable."""
    fields = raw.fields
    for name in ("source", "outlet", "title", "url"):
        _check_scalar(raw, name, fields.get(name))
    source = _text_field(fields.get("source"))
    if source is None:
        raise raw.error("no source", hint=_source_hint(raw))
    clean = clean.replace("\x00", "")
    if len(clean) < settings.min_chars:
        message = f"too short to be an article ({len(clean)} chars, minimum {settings.min_chars})"
        hint = "check the input (cleaning drops page furniture); or lower NCOMPARE_INGEST__MIN_CHARS"
        raise raw.error(message, hint=hint)
    return Document(
        id=_document_id(raw, clean),
        source=source,
        outlet=_text_field(fields.get("outlet")),
        title=_text_field(fields.get("title")),
        date=_iso_date(raw, fields.get("date")),
        url=_text_field(fields.get("url")),
        text=clean,
        metadata=_metadata(raw, fields),
        origin=raw.origin,
    )


def _check_scalar(raw: RawDocument, name: str, value: Any) -> None:
    """source/outlet/title/url are one piece of text each: a list or an object is an error, not dropped."""
    if isinstance(value, list | dict):
        kind = "a list" if isinstance(value, list) else "an object"
        raise raw.error(
            f"{name} must be one text value, got {kind}: {json.dumps(value, ensure_ascii=False)[:80]}",
            hint=f"give {name} as a single string"
            + ("; one document has one source" if name == "source" else ""),
        )


def _source_hint(raw: RawDocument) -> str:
    if raw.format == "jsonl":
        return 'add a "source" field to each line, or pass --source NAME for the whole file'
    return "pass --source NAME or add a sidecar <stem>.meta.yaml with source: NAME"


def _document_id(raw: RawDocument, clean: str) -> str:
    given = raw.fields.get("id")
    if given is None:
        return content_hash(clean)
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given).strip():
        return str(given).strip()
    hint = "give a non-empty string or integer id, or leave id out to use a hash of the text"
    raise raw.error(f"invalid id {given!r}", hint=hint)


def _text_field(value: Any) -> str | None:
    """A scalar field as a single-line string, or None when missing or blank."""
    if value is None or isinstance(value, list | dict):
        return None
    text = " ".join(str(value).split())
    return text or None


def _iso_date(raw: RawDocument, value: Any) -> str | None:
    """YYYY-MM-DD, or None when no date was given. Never invents a missing day, month or year."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    hint = "give the date as YYYY-MM-DD (e.g. 2024-11-26), or leave it out"
    text = str(value).strip()
    if isinstance(value, bool | list | dict):
        raise raw.error(f"unreadable date {text!r}", hint=hint)
    try:
        first = date_parser.parse(text, default=_DEFAULT_A)
        second = date_parser.parse(text, default=_DEFAULT_B)
    except (ValueError, OverflowError) as exc:
        raise raw.error(f"unreadable date {text!r}", hint=hint) from exc
    if first.date() != second.date():
        raise raw.error(f"incomplete date {text!r} (needs year, month and day)", hint=hint)
    return first.date().isoformat()


def _metadata(raw: RawDocument, fields: dict[str, Any]) -> dict[str, MetadataValue]:
    """Every field other than the known ones: scalars as they are, lists/dicts as JSON text, None dropped.
    Keys the vector store refuses are renamed (see `metadata_name`); an empty key is an error of this line."""
    metadata: dict[str, MetadataValue] = {}
    for key, value in fields.items():
        if key in KNOWN_FIELDS or value is None:
            continue
        name = metadata_name(str(key))
        if name is None:
            raise raw.error(
                f"a metadata field has an empty name (value {json.dumps(value, ensure_ascii=False, default=str)[:60]})",
                hint="give every field a name, or remove it",
            )
        metadata[name] = _metadata_value(value)
    return metadata


def metadata_name(key: str) -> str | None:
    """A metadata key Chroma accepts: control characters removed, surrounding space trimmed; a key starting
    with `$` or `#` (Chroma's operators) or `chroma:` (its reserved names) is kept as `meta_<key>` without
    them ('$where' -> 'meta_where'). None for a key left empty."""
    cleaned = "".join(ch for ch in key if ch.isprintable()).strip()
    if cleaned.startswith(("$", "#")) or cleaned.lower().startswith("chroma:"):
        bare = cleaned.lstrip("$#").strip()
        return f"meta_{bare}" if bare else None
    return cleaned or None


def _metadata_value(value: Any) -> MetadataValue:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
