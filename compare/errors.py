"""Errors meant for people: each says what went wrong, where, and what to do next."""

from __future__ import annotations

from compare.redact import redact


class CompareError(Exception):
    """Base class. `hint` says what the user can do about it. Both are redacted (compare/redact.py): an
    error may quote a server's reply, and a server may echo the key it was sent."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class ConfigError(CompareError):
    """A setting, flag or environment variable is missing or invalid."""


class IngestError(CompareError):
    """One input (file, JSONL line, URL) could not be ingested. Names the input and, for JSONL, the line."""

    def __init__(
        self, origin: str, message: str, *, hint: str | None = None, line: int | None = None
    ) -> None:
        where = f"{origin}:{line}" if line is not None else origin
        super().__init__(f"{where}: {message}", hint=hint)
        self.origin = redact(origin)
        self.line = line
        self.reason = redact(message)


class NotArticlesError(IngestError):
    """A file that holds something other than articles (e.g. a JSONL of events or labels)."""


class SkippedInput(IngestError):
    """Met while walking a folder, an input that is not an article file: reported as skipped, not failed."""


class StoreError(CompareError):
    """The vector store cannot be opened, is inconsistent, or refuses an operation."""


class ModelError(CompareError):
    """An embedding or language model could not be loaded or called."""


class LLMOutputError(ModelError):
    """A language model answered, but not in the shape that was asked for."""
