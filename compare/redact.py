"""One redaction step for everything the tool writes: terminal, errors, reports, JSON, caches, history.

A secret can reach an output from anywhere: a server that echoes the Authorization header into an error or
into the model's answer, a backend URL with credentials in it, a key typed into the app. So redaction is not
done where secrets are used but where text leaves the process (`redact` on strings, `redact_data` on JSON-like
values, `RedactingStream` around stdout/stderr). It removes:
- the API keys this process knows (OPENAI_API_KEY, keys typed into the app: `remember_secret`);
- anything shaped like an OpenAI key (`sk-…`) or an HTTP credential (`Bearer …`, `Basic …`);
- credentials in URLs (`http://user:pass@host` -> `http://[redacted]@host`) and key-like query parameters.
"""

from __future__ import annotations

import os
import re
import threading
from typing import IO, Any

MARK = "[redacted]"
_SECRET_ENV = ("OPENAI_API_KEY", "NCOMPARE_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
_MIN_SECRET = 8  # shorter values ("not-needed" placeholders excepted below) would redact ordinary words

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"), "sk-" + MARK),
    (re.compile(r"(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), r"\1" + MARK),
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/@\s\"'<>]+@", re.IGNORECASE), r"\1" + MARK + "@"),
    (
        re.compile(r"([?&](?:api[_-]?key|key|token|access_token|password|secret|sig)=)[^&\s\"'<>#]+", re.I),
        r"\1" + MARK,
    ),
)
_PLACEHOLDERS = frozenset({"not-needed", "sk-no-key-required", "none", "ollama"})

_remembered: set[str] = set()
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """A secret this process was given (a key typed into the app): redacted from every output from now on."""
    if value and len(value.strip()) >= _MIN_SECRET and value.strip().lower() not in _PLACEHOLDERS:
        with _lock:
            _remembered.add(value.strip())


def known_secrets() -> list[str]:
    found = {os.environ.get(name, "").strip() for name in _SECRET_ENV}
    with _lock:
        found |= _remembered
    usable = (s for s in found if len(s) >= _MIN_SECRET and s.lower() not in _PLACEHOLDERS)
    return sorted(usable, key=len, reverse=True)  # longest first: a key containing another is removed whole


def redact(text: str) -> str:
    if not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MARK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any) -> Any:
    """Strings inside dicts, lists and tuples redacted (keys too); other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_data(v) for v in value)
    return value


class RedactingStream:
    """A text stream that redacts what is written to it (wraps sys.stdout / sys.stderr in the CLI).

    Output is redacted per `write` call; a secret split across two writes would pass, but the writers here
    (rich, print, typer) write whole lines or whole renderables."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # isatty, flush, encoding, fileno, ...
        return getattr(self._stream, name)
