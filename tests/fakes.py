"""Fakes for the LLM backend: a scripted chat model for unit tests, a real loopback OpenAI server for the rest.

`FakeChatModel` is a LangChain chat model with a queue of canned replies and a list of recorded requests; it
supports `with_structured_output(..., method=..., include_raw=True)` for all three methods, so the backend's
code path is the same as with `ChatOpenAI`.

`FakeOpenAIServer` speaks just enough of the OpenAI HTTP API (POST /v1/chat/completions) for `ChatOpenAI` and
the `openai` client: each request pops one scripted `Behaviour` (a JSON reply, raw text, an HTTP status, a
delay) and is recorded. Everything is bounded in time: no handler sleeps past the server's shutdown.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from compare.evaluation.loopback import LoopbackJSONServer, Response

# -- a fake LangChain chat model ------------------------------------------------------------------------


def reply_text(payload: Any) -> str:
    """A canned reply as the text a model would send: JSON for dicts/lists/models, strings as they are."""
    if isinstance(payload, BaseModel):
        return payload.model_dump_json()
    if isinstance(payload, dict | list):
        return json.dumps(payload)
    return str(payload)


class FakeChatModel(BaseChatModel):
    """Pops one canned reply per call and records every request (the messages and the structured method).

    Replies are dicts (sent as JSON), strings (sent verbatim: malformed JSON, empty replies), or exceptions
    (raised, e.g. an `openai.APITimeoutError`). With `method="function_calling"` the JSON goes into a tool
    call, as a real server would send it.
    """

    replies: list[Any] = Field(default_factory=list)
    usage: tuple[int, int] = (100, 20)
    _queue: deque[Any] = PrivateAttr(default_factory=deque)
    _requests: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        self._queue = deque(self.replies)

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._requests

    def push(self, *replies: Any) -> None:
        self._queue.extend(replies)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._requests.append({"messages": list(messages), **kwargs})
        if not self._queue:
            raise AssertionError("FakeChatModel: no canned reply left")
        reply = self._queue.popleft()
        if isinstance(reply, BaseException):
            raise reply
        text = reply_text(reply)
        usage = {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}
        usage["total_tokens"] = sum(usage.values())
        if kwargs.get("method") == "function_calling" and text:
            call = {"name": "answer", "args": _loads_or_raw(text), "id": f"call_{len(self._requests)}"}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)  # type: ignore[arg-type]
        else:
            message = AIMessage(content=text, usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, method: str, include_raw: bool = False, **kwargs: Any
    ) -> Runnable:
        """The same contract as ChatOpenAI's: {'raw', 'parsed', 'parsing_error'} when include_raw."""
        bound = self.bind(method=method)

        def parse(message: AIMessage) -> Any:
            if message.tool_calls:
                return schema.model_validate(message.tool_calls[0]["args"])
            return schema.model_validate_json(message.text)

        if not include_raw:
            return bound | RunnableLambda(parse)

        def parse_or_error(inputs: dict[str, Any]) -> dict[str, Any]:
            try:
                return {"parsed": parse(inputs["raw"]), "parsing_error": None}
            except (ValidationError, ValueError) as error:
                return {"parsed": None, "parsing_error": error}

        return RunnableMap(raw=bound) | RunnablePassthrough.assign(**_split(parse_or_error))


def _split(function: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    return {
        "parsed": RunnableLambda(lambda inputs: function(inputs)["parsed"]),
        "parsing_error": RunnableLambda(lambda inputs: function(inputs)["parsing_error"]),
    }


def _loads_or_raw(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"__raw__": text}


# -- a real loopback OpenAI-compatible server -----------------------------------------------------------


@dataclass
class Behaviour:
    """What the server does with one request."""

    reply: Any = None  # dict/list/BaseModel -> JSON text; str -> sent verbatim as the message content
    status: int = 200  # != 200: an error body with this HTTP status
    delay_s: float = 0.0  # sleep first (bounded by the server's lifetime): for client timeouts
    as_tool_call: bool | None = None  # None: a tool call when the request asked for tools
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (120, 30)


def reply(payload: Any, **kwargs: Any) -> Behaviour:
    return Behaviour(reply=payload, **kwargs)


def status(code: int, message: str = "scripted error", **kwargs: Any) -> Behaviour:
    headers = {"retry-after-ms": "10"} if code == 429 else {}
    return Behaviour(reply={"error": {"message": message, "type": "scripted", "code": code}}, status=code,
                     headers={**headers, **kwargs.pop("headers", {})}, **kwargs)  # fmt: skip


def delay(seconds: float, then: Any = None) -> Behaviour:
    return Behaviour(reply=then if then is not None else {}, delay_s=seconds)


@dataclass(frozen=True)
class Recorded:
    """A reply some real server sends, byte for byte (tests/fixtures/llm_servers/)."""

    status: int
    body: str
    content_type: str = "application/json"


def requested_method(body: dict[str, Any]) -> str:
    """Which structured-output method a chat request uses (the names of compare/analysis/structured.py)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return "json_schema"
    if response_format.get("type") == "json_object":
        return "json_object_schema" if "schema" in response_format else "json_mode"
    return "function_calling" if body.get("tools") else "prompt"


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def text(self) -> str:
        """All message contents joined: what the model was shown."""
        return "\n".join(_content_text(m.get("content")) for m in self.messages)


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


class FakeOpenAIServer:
    """`with FakeOpenAIServer([reply({...}), status(429), ...]) as server:` then use `server.base_url`.

    Requests beyond the script get HTTP 500 with a message saying so (a test bug, visible in the error).
    """

    def __init__(
        self,
        script: Sequence[Behaviour] = (),
        *,
        max_delay_s: float = 5.0,
        refusals: dict[str, Recorded] | None = None,
    ) -> None:
        self.script: deque[Behaviour] = deque(script)
        self.refusals = refusals or {}  # structured-output method -> the server's recorded refusal of it
        self.requests: list[RecordedRequest] = []
        self.max_delay_s = max_delay_s
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._http = LoopbackJSONServer(self._respond)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def push(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self.script.extend(behaviours)

    def __enter__(self) -> FakeOpenAIServer:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._http.stop()

    def _next(self) -> Behaviour | None:
        with self._lock:
            return self.script.popleft() if self.script else None

    def _respond(self, path: str, headers: dict[str, str], raw: bytes) -> Response | None:
        body = json.loads(raw or b"{}")
        with self._lock:
            self.requests.append(RecordedRequest(path, headers, body))
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        refusal = self.refusals.get(requested_method(body))
        if refusal is not None:
            return refusal.status, refusal.body.encode(), {"content-type": refusal.content_type}
        behaviour = self._next()
        if behaviour is None:
            return 500, {"error": {"message": "FakeOpenAIServer: script exhausted"}}, {}
        if behaviour.delay_s and self._closing.wait(min(behaviour.delay_s, self.max_delay_s)):
            return None
        if behaviour.status != 200:
            return behaviour.status, behaviour.reply, behaviour.headers or {}
        return 200, completion(body, behaviour), behaviour.headers or {}


def completion(request: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
    """A chat.completion body carrying the scripted reply as content or as a tool call."""
    text = reply_text(behaviour.reply) if behaviour.reply is not None else ""
    tools = request.get("tools") or []
    as_tool = behaviour.as_tool_call if behaviour.as_tool_call is not None else bool(tools)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if as_tool and tools:
        name = tools[0]["function"]["name"]
        call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": text}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    prompt, output = behaviour.usage
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output},
    }


def iter_json_objects(text: str) -> Iterator[Any]:
    """Every top-level JSON value in a string (helps assertions on recorded bodies)."""
    decoder = json.JSONDecoder()
    at = 0
    while at < len(text):
        try:
            value, at = decoder.raw_decode(text, at)
            yield value
        except json.JSONDecodeError:
            at += 1
