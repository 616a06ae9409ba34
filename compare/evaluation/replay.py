"""Recorded LLM responses, replayed by a loopback OpenAI-compatible server: the LLM path with no key, no network.

A cassette is a JSONL file. Its first line is a header:
    {"cassette": 1, "model": "...", "generator": "synthetic-extractive@1" | null, "note": "..."}
then one line per answered call:
    {"key": sha256(model + messages), "loose_key": sha256(model + schema + fenced evidence) | null,
     "schema": "MapAnswer", "response": "<JSON text>", "usage": [prompt_tokens, completion_tokens]}

`ReplayServer` answers POST /v1/chat/completions from the cassette: first by the exact request (model and
every message), then by the loose key (the same evidence and answer schema under reworded instructions, so a
prompt edit does not orphan a recording). A request found in neither is answered by the cassette's generator
when it has one (the shipped cassettes are made by the deterministic synthetic responder,
compare.evaluation.synthetic), else with HTTP 404 naming the request, which the backend reports as an error.
With `record=True` generated answers are added to the cassette and `save()` writes back only what this run
used. The answer goes out as message content, or as a tool call when the request asked for tools, like a real
server. Every lookup is counted (hits, loose hits, generated, misses).

Real responses: run the eval once with a real backend (openai:MODEL ...), then
`python -m compare.evaluation.replay export OUT.jsonl MODEL DATA_DIR...` turns the LLM response caches of the
eval stores into a cassette.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.analysis.prompts import ANALYSIS_CLOSE, ANALYSIS_OPEN, EVIDENCE_CLOSE, EVIDENCE_OPEN
from compare.errors import ConfigError
from compare.evaluation.loopback import LoopbackJSONServer, Response

CASSETTE_VERSION = 1
_FENCE = re.compile(
    rf"(?:{re.escape(EVIDENCE_OPEN)}|{re.escape(ANALYSIS_OPEN)})[^\n]*\n.*?\n(?:{re.escape(EVIDENCE_CLOSE)}"
    rf"|{re.escape(ANALYSIS_CLOSE)})",
    re.DOTALL,
)
#: Given a request body: (the answer as a dict, (prompt tokens, completion tokens)), or None if it cannot.
Responder = Callable[[dict[str, Any]], tuple[dict[str, Any], tuple[int, int]] | None]


def _hash(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def message_pairs(messages: Iterable[Any]) -> list[list[str]]:
    """[[role, content], ...] from OpenAI message dicts or (role, content) pairs; content parts joined."""
    pairs = []
    for message in messages:
        if isinstance(message, dict):
            role, content = str(message.get("role", "")), message.get("content")
        else:
            role, content = str(message[0]), message[1]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        pairs.append([role, content or ""])
    return pairs


def request_key(model: str, messages: Iterable[Any]) -> str:
    return _hash({"model": model, "messages": message_pairs(messages)})


def user_text(messages: Iterable[Any]) -> str:
    """What the user messages carry: the fenced evidence or analyses (the system message only describes them)."""
    return "\n".join(content for role, content in message_pairs(messages) if role == "user")


def loose_key(model: str, schema: str | None, messages: Iterable[Any]) -> str | None:
    blocks = _FENCE.findall(user_text(messages))
    return _hash({"model": model, "schema": schema, "blocks": sorted(blocks)}) if blocks else None


def schema_name(body: dict[str, Any]) -> str | None:
    """The answer schema a request asks for: json_schema's name, a json_object schema's title (as
    llama-cpp-python takes it), or the first tool's."""
    response_format = body.get("response_format") or {}
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        return str((response_format.get("json_schema") or {}).get("name") or "") or None
    if isinstance(response_format, dict) and isinstance(response_format.get("schema"), dict):
        return str(response_format["schema"].get("title") or "") or None
    tools = body.get("tools") or []
    if tools:
        return str(tools[0].get("function", {}).get("name") or "") or None
    return None


@dataclass
class Entry:
    key: str
    loose_key: str | None
    schema: str | None
    response: str
    usage: tuple[int, int]

    def line(self) -> str:
        return json.dumps(
            {
                "key": self.key,
                "loose_key": self.loose_key,
                "schema": self.schema,
                "response": self.response,
                "usage": list(self.usage),
            },
            ensure_ascii=False,
        )


def _usage(value: object) -> tuple[int, int]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    return 0, 0


@dataclass
class Cassette:
    path: Path
    model: str
    generator: str | None = None
    note: str = ""
    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Cassette:
        if not path.is_file():
            raise ConfigError(f"cassette {path} not found", hint="check the replay:PATH backend spec")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        try:
            header = json.loads(lines[0]) if lines else {}
            if header.get("cassette") != CASSETTE_VERSION or not header.get("model"):
                raise ValueError("the first line is not a cassette header")
            cassette = cls(path, header["model"], header.get("generator"), header.get("note", ""))
            for line in lines[1:]:
                row = json.loads(line)
                entry = Entry(
                    row["key"],
                    row.get("loose_key"),
                    row.get("schema"),
                    row["response"],
                    _usage(row.get("usage")),
                )
                cassette.entries[entry.key] = entry
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cassette {path} is not valid ({exc})", hint="re-record it or restore it"
            ) from exc
        return cassette

    def by_loose_key(self, key: str | None) -> Entry | None:
        if key is None:
            return None
        return next((e for e in self.entries.values() if e.loose_key == key), None)

    def save(self, keep: Iterable[str] | None = None) -> None:
        wanted = set(keep) if keep is not None else set(self.entries)
        header = {
            "cassette": CASSETTE_VERSION,
            "model": self.model,
            "generator": self.generator,
            "note": self.note,
        }
        lines = [json.dumps(header, ensure_ascii=False)]
        lines += [self.entries[k].line() for k in sorted(self.entries) if k in wanted]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class ReplayStats:
    hits: int = 0
    loose_hits: int = 0
    generated: int = 0
    misses: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "loose_hits": self.loose_hits,
            "generated": self.generated,
            "misses": self.misses,
        }


class ReplayServer:
    """`with ReplayServer(cassette) as server:` then backend `openai-compatible:<model>@<server.base_url>`."""

    def __init__(
        self, cassette: Cassette, responder: Responder | None = None, *, record: bool = False
    ) -> None:
        self.cassette = cassette
        self.responder = responder
        self.record = record
        self.stats = ReplayStats()
        self.used: set[str] = set()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._http = LoopbackJSONServer(self._respond)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def spec(self) -> str:
        return f"openai-compatible:{self.cassette.model}@{self.base_url}"

    def __enter__(self) -> ReplayServer:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def answer(self, body: dict[str, Any]) -> Entry | None:
        """The recorded (or generated) answer to one request body, or None."""
        model = str(body.get("model") or self.cassette.model)
        messages = body.get("messages") or []
        schema = schema_name(body)
        key, loose = request_key(model, messages), loose_key(model, schema, messages)
        with self._lock:
            entry = self.cassette.entries.get(key)
            if entry is not None:
                self.stats.hits += 1
            elif (entry := self.cassette.by_loose_key(loose)) is not None:
                self.stats.loose_hits += 1
            if entry is not None:
                self.used.add(entry.key)
                return entry
        try:
            generated = self.responder(body) if self.responder is not None else None
        except Exception as exc:  # a generator bug is one failed call, reported by the backend, not a hang
            generated = None
            self.errors.append(f"{type(exc).__name__}: {exc}")
        with self._lock:
            if generated is None:
                self.stats.misses += 1
                return None
            self.stats.generated += 1
            reply, usage = generated
            entry = Entry(key, loose, schema, json.dumps(reply, ensure_ascii=False), usage)
            if self.record:
                self.cassette.entries[key] = entry
                self.used.add(key)
            return entry

    def _respond(self, path: str, headers: dict[str, str], raw: bytes) -> Response:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return 400, {"error": {"message": "the request body is not JSON"}}, {}
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        entry = self.answer(body)
        if entry is None:
            key = request_key(str(body.get("model") or ""), body.get("messages") or [])
            message = f"no recorded response for request {key[:12]} in {self.cassette.path}"
            return 404, {"error": {"message": message, "type": "replay_miss"}}, {}
        return 200, completion(body, entry), {}


def completion(request: dict[str, Any], entry: Entry) -> dict[str, Any]:
    """A chat.completion body with the answer as content, or as a tool call when tools were offered."""
    tools = request.get("tools") or []
    message: dict[str, Any] = {"role": "assistant", "content": entry.response}
    finish = "stop"
    if tools:
        name = tools[0]["function"]["name"]
        call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": entry.response}}
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    prompt, output = entry.usage
    return {
        "id": f"chatcmpl-replay-{entry.key[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output},
    }


# -- cassettes from real runs ------------------------------------------------------------------------------


def export_cassette(out: Path, model: str, caches: Iterable[Path], note: str = "") -> int:
    """Rows of LLM response caches (llm-cache.sqlite) for `model` -> a cassette with no generator."""
    cassette = Cassette(out, model, None, note or f"exported from {model} responses")
    for cache in caches:
        with closing(sqlite3.connect(cache)) as db:
            rows = db.execute(
                "SELECT request, response, tokens_in, tokens_out, part FROM responses WHERE model = ?",
                (model,),
            ).fetchall()
        for request, response, tokens_in, tokens_out, part in rows:
            messages = json.loads(request)
            schema = {"map": "MapAnswer", "single": "SingleAnswer", "reduce": "CrossSourceAnalysis"}.get(part)
            key = request_key(model, messages)
            loose = loose_key(model, schema, messages)
            cassette.entries[key] = Entry(key, loose, schema, response, (int(tokens_in), int(tokens_out)))
    cassette.save()
    return len(cassette.entries)


def _main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[1] != "export":
        print(
            "usage: python -m compare.evaluation.replay export OUT.jsonl MODEL DATA_DIR...", file=sys.stderr
        )
        return 2
    caches = [p for d in argv[4:] for p in Path(d).rglob("llm-cache.sqlite")]
    count = export_cassette(Path(argv[2]), argv[3], caches)
    print(f"{count} response(s) from {len(caches)} cache file(s) -> {argv[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
