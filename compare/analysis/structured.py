"""Structured output that adapts to the server.

OpenAI-compatible servers each accept a different subset of the ways to ask for JSON: OpenAI and vLLM take a
`json_schema` response format, llama-cpp-python refuses it (HTTP 500) but constrains output to a JSON Schema
sent as `{"type": "json_object", "schema": ...}`, some take forced tool calls, and any chat model can be asked
for JSON in words. The `auto` method tries them in `AUTO_ORDER`, treats a refusal of the method itself as a
reason to move on (never to retry the same request), and remembers per server URL and model what worked, so
later calls go straight to it. The prompt always carries the answer's outline, so every method can work.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ValidationError

from compare.redact import redact
from compare.settings import METHOD_LABELS, STRUCTURED_METHODS

Method = Literal["json_schema", "json_object_schema", "function_calling", "json_mode", "prompt"]
AUTO_ORDER: tuple[Method, ...] = get_args(Method)
SETTING_VALUES: tuple[str, ...] = STRUCTURED_METHODS
assert ("auto", *AUTO_ORDER) == SETTING_VALUES, "compare/settings.py lists the same methods"
MEMORY_FILE = "llm-methods.json"

#: LangChain builds these three itself; the other two are a response_format we send, or none.
_LANGCHAIN_METHODS = ("json_schema", "function_calling", "json_mode")
#: Words a server's refusal of a structured-output method names (a FastAPI/pydantic validation error of
#: response_format, OpenAI's "not supported with this model", a template without tool support).
_CAPABILITY_WORDS = ("response_format", "json_schema", "json_object", "tool", "function", "grammar")
_CAPABILITY_STATUSES = frozenset({400, 405, 415, 422, 501})


def describe(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def structured_runnable(
    chat: BaseChatModel, schema: type[BaseModel], method: Method
) -> Runnable[Sequence[BaseMessage], dict[str, Any]]:
    """A runnable answering {"raw": AIMessage, "parsed": schema instance or None, "parsing_error": ...}."""
    if method in _LANGCHAIN_METHODS:
        return cast(
            Runnable[Sequence[BaseMessage], dict[str, Any]],
            chat.with_structured_output(schema, method=method, include_raw=True),
        )
    model: Runnable[Any, Any] = chat
    if method == "json_object_schema":
        model = chat.bind(response_format={"type": "json_object", "schema": schema.model_json_schema()})
    return model | RunnableLambda(lambda message: parse_reply(message, schema))


def parse_reply(message: Any, schema: type[BaseModel]) -> dict[str, Any]:
    """The reply's JSON object read tolerantly (a code fence or words around it are skipped), validated."""
    text = message.text if isinstance(message, AIMessage) else str(message)
    try:
        data = json_in_text(text)
    except ValueError as error:
        return {"raw": message, "parsed": None, "parsing_error": error}
    try:
        return {"raw": message, "parsed": schema.model_validate(data), "parsing_error": None}
    except ValidationError as error:
        return {"raw": message, "parsed": None, "parsing_error": error}


def json_in_text(text: str) -> Any:
    """The first JSON object in `text`: the whole text, else a fenced block, else from the first `{` that
    starts a valid object. Raises ValueError naming what was wrong."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the reply is empty")
    candidates = [stripped, *re.findall(r"```(?:json)?\s*(.*?)```", stripped, flags=re.DOTALL)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", stripped):
        try:
            value, _ = decoder.raw_decode(stripped, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError(f"no JSON object in the reply ({stripped[:80]!r})")


def capability_refusal(status: int, body: str) -> bool:
    """A refusal of the structured-output method itself: retrying the same request cannot help, another
    method may. A 4xx or 5xx whose body names response_format, json_schema, tools ...; never an auth,
    not-found, rate-limit or context-length error."""
    if status not in _CAPABILITY_STATUSES and status < 500:
        return False
    text = body.lower()
    if "context" in text and ("length" in text or "window" in text or "exceed" in text):
        return False
    return any(word in text for word in _CAPABILITY_WORDS)


@dataclass
class Refusal(Exception):
    """The server refused a method (or, under `auto`, answered it with nothing usable)."""

    method: str
    reason: str

    def __str__(self) -> str:
        return f"{describe(self.method)}: {self.reason}"


@dataclass
class MethodMemory:
    """What worked, per server URL and model: a small JSON file in the data dir, written atomically. An
    unreadable file is forgotten, not an error: the next call negotiates again."""

    path: Path | None
    _known: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: bool = False

    @staticmethod
    def key(base_url: str | None, model: str) -> str:
        return f"{redact(base_url or 'https://api.openai.com/v1')}|{model}"

    def get(self, base_url: str | None, model: str) -> Method | None:
        entry = self._entries().get(self.key(base_url, model), {})
        method = entry.get("method")
        return cast(Method, method) if method in AUTO_ORDER else None

    def remember(self, base_url: str | None, model: str, method: Method, refused: Sequence[Refusal]) -> None:
        entries = self._entries()
        entries[self.key(base_url, model)] = {
            "method": method,
            "refused": {r.method: r.reason[:300] for r in refused},
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".llm-methods-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entries, out, indent=1, sort_keys=True)
            os.replace(temp, self.path)
        except OSError:
            pass  # an optimisation: the next process negotiates again

    def _entries(self) -> dict[str, dict[str, Any]]:
        if not self._loaded:
            self._loaded = True
            try:
                data = json.loads(self.path.read_text(encoding="utf-8")) if self.path else {}
            except (OSError, ValueError):
                data = {}
            self._known = data if isinstance(data, dict) else {}
        return self._known


def methods_to_try(setting: str, remembered: Method | None) -> list[Method]:
    """An explicit method alone; under `auto`, the remembered one first, then the rest in AUTO_ORDER."""
    if setting != "auto":
        return [cast(Method, setting)]
    return [remembered] + [m for m in AUTO_ORDER if m != remembered] if remembered else list(AUTO_ORDER)
