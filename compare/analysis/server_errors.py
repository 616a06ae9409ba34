"""A model server's errors as messages for people: the cause in words and the fix, never the server's raw text.

Each openai client error is classified (timeout, unreachable, key refused, unknown model, context too long,
overloaded, method refused, server failure). A server's reply may carry a Python traceback with file paths
(llama-cpp-python answers a refused response_format that way): the message keeps one cleaned line of it and
the whole reply goes to a log file in the data dir, which the message names.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Protocol

import openai

from compare.errors import CompareError, ConfigError, LLMOutputError, ModelError
from compare.redact import redact
from compare.settings import LLMSettings

API_KEY_ENV = "OPENAI_API_KEY"
LOG_FILE = Path("logs") / "llm-server-errors.log"
_PATH = re.compile(r"""(?:[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}\.py\w?|File "[^"]*"(?:, line \d+)?""")
_CONTEXT_WORDS = ("context length", "context window", "maximum context", "too many tokens", "too long")


class Target(Protocol):
    @property
    def spec(self) -> str: ...

    @property
    def where(self) -> str: ...

    @property
    def model(self) -> str: ...


def server_text(error: openai.APIStatusError) -> str:
    """Everything the server sent back, as text."""
    try:
        return error.response.text
    except Exception:  # a response whose body cannot be read as text: the client's summary will do
        return str(error.message)


def short_reason(text: str, limit: int = 160) -> str:
    """One line of a server's reply fit to show: the message inside a JSON error, no traceback, no paths."""
    found = re.search(r'"(?:message|detail|msg|error)"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    line = found.group(1) if found else text
    before, crashed, trace = line.partition("Traceback (most recent call last)")
    lines = [part.strip() for part in re.split(r"\\n|\n", before) if part.strip()]
    if crashed:  # a traceback's last line is the exception raised, the only line worth showing
        tail = [part.strip() for part in re.split(r"\\n|\n", trace) if part.strip()]
        lines = [*lines, *tail[-1:]] if tail and not tail[-1].startswith(("File ", "^")) else lines
    line = lines[0] if lines and not crashed else (lines[-1] if lines else "no message")
    if line.endswith(":") and not crashed and len(lines) > 1:  # "1 validation error:" then what it is
        line = f"{line} {lines[1]}"
    line = _PATH.sub("…", line).replace("\\'", "'").replace('\\"', '"')
    return line if len(line) <= limit else line[: limit - 1] + "…"


def log_reply(log: Path | None, target: Target, status: int, text: str) -> str:
    """Append the server's whole reply to the log; the words that say where it is ('' if not written)."""
    if log is None:
        return ""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with log.open("a", encoding="utf-8") as out:
            out.write(f"--- {stamp} {redact(target.spec)} HTTP {status}\n{redact(text)}\n")
    except OSError:
        return ""
    return f"; the server's full reply is in {log}"


def retryable(error: openai.APIStatusError) -> bool:
    """Worth asking again: a timeout, a conflict, a rate limit, a server failure (as the openai client does)."""
    return error.status_code in (408, 409, 429) or error.status_code >= 500


def retry_delay(error: openai.APIStatusError | None, attempt: int) -> float:
    """Seconds before the next attempt: the server's Retry-After (capped at 60 s), else 0.5 s doubling to 8 s."""
    headers = error.response.headers if error is not None else {}
    try:
        if "retry-after-ms" in headers:
            return min(float(headers["retry-after-ms"]) / 1000, 60.0)
        if "retry-after" in headers:
            return min(float(headers["retry-after"]), 60.0)
    except ValueError:
        pass  # an HTTP date or garbage: the usual backoff
    return min(0.5 * 2**attempt, 8.0) * random.uniform(0.75, 1.0)


def is_context_error(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _CONTEXT_WORDS) or (
        "context" in lowered and ("exceed" in lowered or "window" in lowered)
    )


def api_error(
    error: openai.OpenAIError, target: Target, llm: LLMSettings, log: Path | None = None
) -> CompareError:
    """An openai client error as a message for people: what happened, where, and what to do."""
    tries = f"after {llm.max_retries + 1} attempt(s)"
    if isinstance(error, openai.APITimeoutError):
        return ModelError(
            f"{target.spec}: no answer from {target.where} within {llm.timeout_s:g} s (not asked again: the "
            "server would do the same work again)",
            hint="a small local model on a CPU can need minutes: raise NCOMPARE_LLM__TIMEOUT_S, ask about fewer "
            "sources, or check that the server is not busy with another request",
        )
    if isinstance(error, openai.APIConnectionError):
        return ModelError(
            f"{target.spec}: cannot reach {target.where} ({tries}): {error}",
            hint="is the server running? check the URL in the backend spec, OPENAI_BASE_URL or "
            "NCOMPARE_OPENAI_BASE_URL",
        )
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, target, llm, log)
    if isinstance(error, openai.LengthFinishReasonError):
        return LLMOutputError(
            f"{target.spec}: the model's answer was cut off at {llm.max_output_tokens} tokens, unfinished",
            hint="raise NCOMPARE_LLM__MAX_OUTPUT_TOKENS; a small model that repeats itself fills any limit "
            "(SmolLM2-135M does): then use a stronger model",
        )
    return ModelError(f"{target.spec}: {type(error).__name__}: {short_reason(str(error))}", hint="see above")


def _status_error(
    error: openai.APIStatusError, target: Target, llm: LLMSettings, log: Path | None
) -> CompareError:
    text = server_text(error)
    status, reason = error.status_code, short_reason(text)
    tries = f"after {llm.max_retries + 1} attempt(s)"
    logged = log_reply(log, target, status, text) if status >= 500 or "Traceback" in text else ""
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ConfigError(
            f"{target.where} refused the API key (HTTP {status}): {reason}",
            hint=f"check {API_KEY_ENV} (a key for this server, with access to {target.model!r})",
        )
    if isinstance(error, openai.NotFoundError):
        return ModelError(
            f"{target.where} does not know model {target.model!r}, or the URL is wrong (HTTP 404: {reason})",
            hint="check the model name (`curl URL/models` lists them; `ollama list` for Ollama) and that the "
            "base URL ends in /v1",
        )
    if is_context_error(text):
        return ModelError(
            f"{target.spec}: the prompt is longer than the model's context (HTTP {status}: {reason})",
            hint="set NCOMPARE_LLM__CONTEXT_TOKENS to the context the server really runs with (llama.cpp: its "
            "--ctx-size / n_ctx), or lower NCOMPARE_K_PER_SOURCE",
        )
    if status in (429, 503):
        return ModelError(
            f"{target.spec}: {target.where} is overloaded or rate limited (HTTP {status}, {tries}): {reason}",
            hint="wait and ask again (retrying helps here), raise NCOMPARE_LLM__MAX_RETRIES, or check the "
            "account's quota",
        )
    if status >= 500:
        return ModelError(
            f"{target.where} failed with HTTP {status} ({tries}): {reason}{logged}",
            hint="the server itself failed: its log says why; if it names the request (a parameter, the "
            "model's chat template), another NCOMPARE_LLM__STRUCTURED_METHOD may avoid it",
        )
    return ModelError(
        f"{target.where} rejected the request (HTTP {status}): {reason}{logged}",
        hint="check the model name and settings (`ncompare config`)",
    )


def refused_method(target: Target, refusal: str, setting: str) -> ModelError:
    """The structured-output method set explicitly was refused: retrying cannot help, `auto` can. (Under
    `auto` the last method asks for JSON in words, which no server refuses as a method.)"""
    return ModelError(
        f"{target.where} does not accept the structured-output method {setting!r} ({refusal})",
        hint="set NCOMPARE_LLM__STRUCTURED_METHOD=auto (the default) to let the tool find one the server "
        "accepts, or choose it in the app (Backend › Structured output)",
    )
