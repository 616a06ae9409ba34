"""The `ncompare` commands as a user runs them: exit codes, JSON shapes, errors with hints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from compare.cli import app
from tests.conftest import FIXTURES, REPO

runner = CliRunner()
SEEDS = REPO / "examples" / "corpus" / "seeds"


@pytest.fixture
def cli(services: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke the CLI in-process, reusing the session's loaded model."""
    import compare.cli as cli_module

    monkeypatch.setattr(cli_module, "Services", lambda settings: _with_embedder(settings, services))

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return invoke


def _with_embedder(settings: Any, template: Any) -> Any:
    from compare.services import Services

    built = Services(settings)
    built.__dict__["embedder"] = template.embedder
    return built


def test_ingest_json_summary_and_search(cli: Any) -> None:
    result = cli("ingest", str(SEEDS), str(FIXTURES / "corpus" / "us_gov_small.jsonl"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["added"] == 6 and summary["failed"] == 0 and summary["chunks"] > 6
    assert len(summary["undated"]) == 1
    hits = json.loads(cli("search", "negotiating position", "-k", "3", "--json").stdout)
    assert hits[0]["source"].endswith("via-ua-press")
    assert set(hits[0]) >= {"doc_id", "source", "date", "char_start", "char_end", "score", "text"}
    doc = json.loads(cli("doc", hits[0]["doc_id"], "--json").stdout)
    assert doc["text"][hits[0]["char_start"] : hits[0]["char_end"]] == hits[0]["text"]
    sources = json.loads(cli("sources", "--json").stdout)
    assert {row["source"] for row in sources} >= {"whitehouse", "wapo-via-ua-press"}
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["documents"] == 6 and stats["embedder"]


def test_bad_inputs_fail_with_reasons_and_good_ones_are_kept(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = json.loads((FIXTURES / "corpus" / "us_gov_small.jsonl").read_text().splitlines()[0])
    bad.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"id": "x", "source": "s"}) + "\n")
    result = cli("ingest", str(bad), str(tmp_path / "missing.txt"), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["added"] == 1 and summary["failed"] == 3
    origins = {item["origin"] for item in summary["items"] if item["status"] == "failed"}
    assert f"{bad}:2" in origins and f"{bad}:3" in origins
    assert all(item["hint"] for item in summary["items"] if item["status"] == "failed")


def test_delete_by_doc_and_source(cli: Any) -> None:
    cli("ingest", str(FIXTURES / "corpus" / "us_gov_small.jsonl"))
    assert json.loads(cli("delete", "--source", "whitehouse", "--json").stdout) == {"deleted": 3}
    result = cli("delete", "--doc", "us-gov-2022-10-10-missile-strikes-01", "--json")
    assert json.loads(result.stdout) == {"deleted": 1}
    assert cli("delete", "--doc", "nope").exit_code == 1
    assert json.loads(cli("stats", "--json").stdout)["documents"] == 0


def test_errors_are_messages_not_tracebacks(cli: Any) -> None:
    result = cli("doc", "no-such-id")
    assert result.exit_code == 1 and "no document with id" in result.output
    bad_date = cli("search", "x", "--since", "last week")
    assert bad_date.exit_code == 1 and "YYYY-MM-DD" in bad_date.output
    bad_where = cli("search", "x", "--where", "event_id")
    assert bad_where.exit_code == 1 and "key=value" in bad_where.output
    assert "Traceback" not in result.output + bad_date.output + bad_where.output


def test_config_lists_every_setting_with_a_description(cli: Any) -> None:
    data = json.loads(cli("config", "--json").stdout)
    assert {"data_dir", "embedder", "chunk.max_tokens", "ingest.allow_private", "settings_hash"} <= set(data)
    table = cli("config").stdout
    assert "NCOMPARE_CHUNK__MAX_TOKENS" in table


def _ncompare() -> list[str]:
    return [sys.executable, "-m", "compare.cli"]


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "NCOMPARE_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_minus_9_mid_ingest_then_rerun(tmp_path: Path) -> None:
    """A killed ingest leaves a store that opens; the same command completes it with no duplicate chunks."""
    data_dir = tmp_path / "data"
    corpus = str(REPO / "examples" / "corpus" / "us_gov_ukraine" / "articles.jsonl")
    cmd = [*_ncompare(), "ingest", corpus, "--json"]
    proc = subprocess.Popen(cmd, env=_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = data_dir / "ingest-journal.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (data_dir / "chroma").exists() and journal.exists():
            time.sleep(0.2)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(cmd, env=_env(data_dir), capture_output=True, text=True, timeout=200)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["failed"] == 0 and summary["added"] + summary["unchanged"] + summary["duplicate"] == 31
    _assert_consistent(data_dir)


def _assert_consistent(data_dir: Path) -> None:
    from compare.settings import Settings
    from compare.store import Store

    store = Store(Settings(data_dir=data_dir))
    rows = store.document_metadata()
    assert len(rows) == 31
    expected_chunks = sum(int(row["n_chunks"]) for row in rows)
    assert store.stats()["chunks"] == expected_chunks
    for row in rows[:5]:
        doc = store.get_document(str(row["id"]))
        assert doc is not None
        assert all(doc.text[s:e] == t for s, e, t in store.chunk_texts(doc.id))


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_ingest_and_search_with_no_network_at_all(tmp_path: Path) -> None:
    """The whole path runs in a network namespace with no interfaces up: nothing is downloaded."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode().strip()}")
    env = _env(tmp_path / "data")
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path / "tiktoken")  # BPE files must come from the package
    ingest = subprocess.run(
        ["unshare", "-n", *_ncompare(), "ingest", str(SEEDS), "--json"],
        env=env, capture_output=True, text=True, timeout=200,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 2
    search = subprocess.run(
        ["unshare", "-n", *_ncompare(), "search", "negotiating position", "--json"],
        env=env, capture_output=True, text=True, timeout=200,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["source"].endswith("via-ua-press")
