"""CSV of a comparison view: one row per source, a spreadsheet formula guard on every text cell."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from compare.types import Comparison
from compare.view.model import ComparisonView

CSV_FIELDS = (
    "source",
    "outlet",
    "first_date",
    "last_date",
    "documents",
    "position",
    "position_confidence",
    "position_target",
    "position_check",
    "tone",
    "tone_confidence",
    "tone_low_confidence",
    "quotes_verified",
    "quotes_repaired",
    "shifts",
    "question",
    "backend",
    "settings_hash",
    "package_version",
    "created_at",
)


def csv_safe(value: object) -> object:
    """Spreadsheet formula guard: a text cell starting with = + - @ or a control character is prefixed."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_rows(comparison: Comparison, view: ComparisonView) -> list[dict[str, object]]:
    """One row per source: position toward the question (in the view's words), tone, quote and shift counts,
    and how the result was made."""
    meta = comparison.meta
    rows: list[dict[str, object]] = []
    for source, column in zip(comparison.sources, view.columns):
        position = column.position
        rows.append(
            {
                "source": column.key,
                "outlet": column.name,
                "first_date": source.first_date or "",
                "last_date": source.last_date or "",
                "documents": column.documents,
                "position": position.words if position else "",
                "position_confidence": round(position.confidence, 3)
                if position and position.confidence
                else "",
                "position_target": comparison.target if position else "",
                "position_check": position.check_text if position else "",
                "tone": source.stance.label,
                "tone_confidence": round(source.stance.confidence, 3),
                "tone_low_confidence": source.stance.low_confidence,
                "quotes_verified": column.quotes_verified,
                "quotes_repaired": column.quotes_repaired,
                "shifts": column.shifts,
                "question": comparison.question,
                "backend": meta.backend,
                "settings_hash": meta.settings_hash,
                "package_version": meta.package_version,
                "created_at": meta.created_at,
            }
        )
    return rows


def write_csv(fields: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_safe(row.get(key, "")) for key in fields})
    return buffer.getvalue()
