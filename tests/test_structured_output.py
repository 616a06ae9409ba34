"""Structured output that adapts to the server: `auto` tries json_schema, json_object with the schema, tools,
json_object, then JSON asked for in words; a refusal of a method moves on without retrying it; what worked is
remembered per server and model; errors name the cause and the fix, never the server's traceback. The servers
are loopback stand-ins answering with replies recorded from (or read in the source of) real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compare.analysis.llm import LLMBackend
from compare.analysis.server_errors import LOG_FILE, short_reason
from compare.analysis.structured import (
    AUTO_ORDER,
    MEMORY_FILE,
    MethodMemory,
    capability_refusal,
    json_in_text,
    methods_to_try,
)
from compare.errors import LLMOutputError, ModelError
from compare.settings import Settings
from tests.fakes import FakeOpenAIServer, Recorded, reply, requested_method, status
from tests.test_llm_backend import MODEL, analysis, hpo_request, llm_settings, single_reply

SERVERS = Path(__file__).parent / "fixtures" / "llm_servers"
#: llama-cpp-python 0.3 refuses a json_schema response_format with a 500 (recorded from a real server).
_RECORDED = json.loads((SERVERS / "llama_cpp_python.json").read_text(encoding="utf-8"))["responses"][
    "json_schema"
]
LLAMA_CPP_PYTHON_REFUSAL = Recorded(_RECORDED["status"], _RECORDED["body"], _RECORDED["content_type"])
TRACEBACK_BODY = (
    'Traceback (most recent call last):\n  File "/opt/venv/lib/python3.11/site-packages/llama_cpp/server/'
    'errors.py", line 171, in custom_route_handler\n    response = await original_route_handler(request)\n'
    "RuntimeError: llama_decode returned -3\n"
)


def backend(settings: Settings, server: FakeOpenAIServer, **llm: Any) -> LLMBackend:
    defaults: dict[str, Any] = {"max_retries": 2, "timeout_s": 5.0, "cache": True}
    tuned = llm_settings(settings, **{**defaults, **llm})
    return LLMBackend.from_spec(f"openai-compatible:{MODEL}@{server.base_url}", tuned)


def answer() -> dict[str, Any]:
    return single_reply(analysis("hpo"))


# -- pieces --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here is the JSON:\n```json\n{"a": {"b": [1, 2]}}\n```\nDone.', {"a": {"b": [1, 2]}}),
        ('Sure! {"a": "x } y"} and more {"b": 2}', {"a": "x } y"}),
        ('{broken {"a": 1}', {"a": 1}),
    ],
)
def test_json_is_found_in_a_chatty_reply(text: str, expected: Any) -> None:
    assert json_in_text(text) == expected


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2]", "{'single': 'quotes'}"])
def test_a_reply_without_a_json_object_is_an_error_in_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"empty|no JSON object"):
        json_in_text(text)


@pytest.mark.parametrize(
    ("code", "body", "refused"),
    [
        (500, LLAMA_CPP_PYTHON_REFUSAL.body, True),
        (
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model",
            True,
        ),
        (422, '{"detail": [{"loc": ["body", "tools"], "msg": "extra fields not permitted"}]}', True),
        (400, '{"error": {"message": "registry.ollama.ai/library/x does not support tools"}}', True),
        (400, "This model's maximum context length is 8192 tokens; response_format ... exceeds", False),
        (401, "Incorrect API key provided (response_format)", False),
        (404, "model 'x' not found", False),
        (429, "Rate limit reached", False),
        (500, "CUDA error: out of memory", False),
        (503, "Service Unavailable", False),
    ],
)
def test_capability_refusals_are_told_from_other_errors(code: int, body: str, refused: bool) -> None:
    assert capability_refusal(code, body) is refused


def test_methods_order_puts_the_remembered_one_first() -> None:
    assert methods_to_try("auto", None) == list(AUTO_ORDER)
    assert methods_to_try("auto", "function_calling")[:2] == ["function_calling", "json_schema"]
    assert methods_to_try("json_mode", "prompt") == ["json_mode"]  # an explicit method always wins


def test_a_servers_message_is_one_clean_line() -> None:
    assert short_reason(TRACEBACK_BODY) == "RuntimeError: llama_decode returned -3"  # the exception raised
    shown = short_reason(LLAMA_CPP_PYTHON_REFUSAL.body)
    assert shown.startswith("1 validation error") and len(shown) <= 160
    assert "/opt/venv" not in short_reason('{"message": "failed in /opt/venv/lib/x/server/app.py: boom"}')


# -- negotiation against loopback servers ----------------------------------------------------------------


def test_auto_moves_past_a_refused_json_schema_and_remembers(settings: Settings) -> None:
    refusals = {"json_schema": LLAMA_CPP_PYTHON_REFUSAL}
    with FakeOpenAIServer([reply(answer())], refusals=refusals) as server:
        comparison = backend(settings, server).compare(hpo_request())
        sent = [requested_method(r.body) for r in server.requests]
        schema = server.requests[-1].body["response_format"]["schema"]
    assert sent == ["json_schema", "json_object_schema"]  # the refusal was not retried
    assert comparison.sources[0].claims and schema["title"] == "SingleAnswer"
    memory = MethodMemory(settings.data_dir / MEMORY_FILE)
    assert memory.get(server.base_url, MODEL) == "json_object_schema"
    with FakeOpenAIServer([reply(answer())], refusals=refusals) as again:
        MethodMemory(settings.data_dir / MEMORY_FILE).remember(
            again.base_url, MODEL, "json_object_schema", []
        )
        backend(settings, again, cache=True).compare(hpo_request())
        assert [requested_method(r.body) for r in again.requests] == ["json_object_schema"]


def test_auto_falls_back_to_json_in_words(settings: Settings) -> None:
    refused = Recorded(400, '{"error": {"message": "unsupported response_format / tools"}}')
    refusals = {m: refused for m in ("json_schema", "json_object_schema", "function_calling", "json_mode")}
    chatty = "Here you go:\n```json\n" + json.dumps(answer()) + "\n```"
    with FakeOpenAIServer([reply(chatty)], refusals=refusals) as server:
        comparison = backend(settings, server, cache=False).compare(hpo_request())
        sent = [requested_method(r.body) for r in server.requests]
    assert sent == list(AUTO_ORDER) and comparison.sources[0].claims
    assert "response_format" not in server.requests[-1].body and "tools" not in server.requests[-1].body


def test_a_method_that_answers_nothing_usable_is_left_under_auto(settings: Settings) -> None:
    """A server that accepts json_schema but ignores it (free text back) is not asked the same way again."""
    with FakeOpenAIServer([reply("I cannot do JSON, sorry."), reply(answer())]) as server:
        comparison = backend(settings, server, cache=False).compare(hpo_request())
        sent = [requested_method(r.body) for r in server.requests]
    assert sent == ["json_schema", "json_object_schema"] and comparison.sources[0].claims


def test_an_explicit_method_refused_says_to_use_auto(settings: Settings) -> None:
    with (
        FakeOpenAIServer([], refusals={"json_schema": LLAMA_CPP_PYTHON_REFUSAL}) as server,
        pytest.raises(
            ModelError, match="does not accept the structured-output method 'json_schema'"
        ) as caught,
    ):
        backend(settings, server, structured_method="json_schema").compare(hpo_request())
    assert len(server.requests) == 1  # retrying a refusal cannot help: not retried
    assert "STRUCTURED_METHOD=auto" in (caught.value.hint or "")
    assert "retry later" not in caught.value.message + (caught.value.hint or "")


def test_when_only_words_are_left_and_the_model_writes_no_json_the_output_is_named(
    settings: Settings,
) -> None:
    refused = Recorded(400, '{"error": {"message": "response_format and tools are not supported"}}')
    refusals = {m: refused for m in AUTO_ORDER if m != "prompt"}
    with (
        FakeOpenAIServer(
            [reply("I think the sources disagree."), reply("Still no JSON.")], refusals=refusals
        ) as server,
        pytest.raises(LLMOutputError, match=r"gave no usable .* with JSON asked for in the prompt") as caught,
    ):
        backend(settings, server, output_retries=1).compare(hpo_request())
    assert [requested_method(r.body) for r in server.requests] == [*AUTO_ORDER, "prompt"]
    assert "no JSON object in the reply" in caught.value.message and "retry" not in (caught.value.hint or "")


def test_a_transient_failure_while_probing_is_retried_not_taken_for_a_refusal(settings: Settings) -> None:
    with FakeOpenAIServer([status(500, "upstream hiccup"), reply(answer())]) as server:
        comparison = backend(settings, server, cache=False).compare(hpo_request())
        sent = [requested_method(r.body) for r in server.requests]
    assert sent == ["json_schema", "json_schema"] and comparison.sources[0].claims


def test_a_traceback_from_the_server_is_logged_not_shown(settings: Settings) -> None:
    crash = Recorded(500, TRACEBACK_BODY, "text/plain")
    server = FakeOpenAIServer([], refusals={m: crash for m in AUTO_ORDER})
    with server, pytest.raises(ModelError) as caught:
        backend(settings, server, max_retries=0).compare(hpo_request())
    shown = caught.value.message + (caught.value.hint or "")
    assert "HTTP 500" in shown and "Traceback" not in shown and "/opt/venv" not in shown
    log = settings.data_dir / LOG_FILE
    assert str(log) in shown and "llama_decode returned -3" in log.read_text(encoding="utf-8")


def test_a_prompt_over_the_context_names_the_setting(settings: Settings) -> None:
    too_long = Recorded(
        400,
        '{"error": {"message": "Requested tokens (9000) exceed context window of 2048", "type": '
        '"invalid_request_error"}}',
    )
    with (
        FakeOpenAIServer([], refusals=dict.fromkeys(AUTO_ORDER, too_long)) as server,
        pytest.raises(ModelError, match="longer than the model's context") as caught,
    ):
        backend(settings, server).compare(hpo_request())
    assert len(server.requests) == 1 and "NCOMPARE_LLM__CONTEXT_TOKENS" in (caught.value.hint or "")


# -- recorded server families ----------------------------------------------------------------------------


def families() -> list[Path]:
    found = sorted(SERVERS.glob("*.json"))
    assert found, f"no recorded servers in {SERVERS}"
    return found


@pytest.mark.parametrize("path", families(), ids=lambda p: p.stem)
def test_auto_settles_on_what_each_server_family_accepts(settings: Settings, path: Path) -> None:
    family = json.loads(path.read_text(encoding="utf-8"))
    responses = family["responses"]
    refusals = {
        method: Recorded(r["status"], r["body"], r.get("content_type") or "application/json")
        for method, r in responses.items()
        if method in AUTO_ORDER and method not in family["accepts"] and r.get("status") not in (None, 200)
    }
    expected = next(m for m in AUTO_ORDER if m not in refusals)
    with FakeOpenAIServer([reply(answer())], refusals=refusals) as server:
        comparison = backend(settings, server, cache=False).compare(hpo_request())
        sent = [requested_method(r.body) for r in server.requests]
    assert sent[-1] == expected and comparison.sources[0].claims, (family["server"], sent)
    assert sent == list(AUTO_ORDER[: AUTO_ORDER.index(expected) + 1])
