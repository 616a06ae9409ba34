"""Secrets never reach an output: a sentinel key, echoed back by a loopback server, appears in no terminal
output, report file, cache, history or store file (compare/redact.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compare.evaluation.loopback import LoopbackJSONServer, Response
from compare.redact import MARK, redact, redact_data, remember_secret
from tests.conftest import REPO

SENTINEL = "sk-sentinel-5f2c9a1e7b3d4c6e8f0a"


def test_keys_tokens_and_url_credentials_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "my-very-own-key-123")
    text = (
        "key my-very-own-key-123, header Authorization: Bearer abc.def-ghi_jkl, other sk-abcdefghijklmnop1234, "
        "url http://user:pa55@host:8080/v1?api_key=xyz&x=1"
    )
    clean = redact(text)
    for secret in ("my-very-own-key-123", "abc.def-ghi_jkl", "sk-abcdefghijklmnop1234", "user:pa55", "xyz"):
        assert secret not in clean
    assert "http://[redacted]@host:8080/v1?api_key=[redacted]&x=1" in clean
    assert redact("the word not-needed and a short key") == "the word not-needed and a short key"


def test_a_key_typed_into_the_app_is_redacted_from_then_on() -> None:
    remember_secret("typed-key-0123456789")
    assert redact_data({"a": ["x typed-key-0123456789 y"]}) == {"a": [f"x {MARK} y"]}


def _echo(path: str, headers: dict[str, str], body: bytes) -> Response:
    """A server that puts the Authorization header it received into its error message."""
    received = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    return 500, {"error": {"message": f"upstream failed; you sent Authorization: {received}"}}, {}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from compare.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sentinel_key_echoed_by_the_server_appears_in_no_output(tmp_path: Path) -> None:
    data_dir, out_dir = tmp_path / "data", tmp_path / "report"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NCOMPARE_DATA_DIR": str(data_dir),
        "OPENAI_API_KEY": SENTINEL,
        "NCOMPARE_LLM__MAX_RETRIES": "0",
    }
    seeds = str(REPO / "examples" / "corpus" / "seeds")
    assert _run(["ingest", seeds, "--json"], env).returncode == 0
    with LoopbackJSONServer(_echo) as server:
        # credentials in the backend URL too: they must not be printed or stored either
        with_credentials = server.base_url.replace("http://", "http://alice:secret-pw-42@")
        outputs: list[Any] = []
        asked = _run(["ask", "What changed?", "-b", f"openai-compatible:m@{with_credentials}"], env)
        outputs += [asked.stdout, asked.stderr]
        assert asked.returncode != 0 and "Traceback" not in asked.stderr
        backend = f"openai-compatible:m@{server.base_url}"  # sends the sentinel key as a bearer token
        asked = _run(["ask", "What changed?", "-b", backend, "--json"], env)
        outputs += [asked.stdout, asked.stderr]
        assert asked.returncode != 0 and "Traceback" not in asked.stderr
        spec = tmp_path / "spec.yaml"
        spec.write_text("title: Leak check\nquestions:\n  - What changed?\n", encoding="utf-8")
        reported = _run(["report", str(spec), "--out", str(out_dir), "-b", backend], env)
        outputs += [reported.stdout, reported.stderr]
    assert "Traceback" not in reported.stderr, reported.stderr
    assert reported.returncode == 1, (
        reported.stdout + reported.stderr
    )  # nothing answered: a report of failures
    files = [p for p in [*out_dir.rglob("*"), *data_dir.rglob("*")] if p.is_file()]
    assert any(p.name == "report.md" for p in files)
    for path in files:
        outputs.append(path.read_bytes().decode("utf-8", errors="replace"))
    for text in outputs:
        assert SENTINEL not in text and "secret-pw-42" not in text and "YWxpY2U6c2VjcmV0LXB3LTQy" not in text
    assert any(MARK in text for text in outputs)  # the echo happened, and was redacted
    json.dumps(outputs)  # all text
