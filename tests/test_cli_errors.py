"""Inputs that used to end in a traceback or a misleading message: each is now a message naming the input, a
hint, and a non-zero exit; good work next to a bad input is still done."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from compare.cli import app
from compare.errors import ConfigError
from compare.settings import load_settings
from compare.store import Filters, _parse_scalar
from compare.terminal import safe_markup, terminal_text
from tests.conftest import FIXTURES, REPO

runner = CliRunner()
SMALL = FIXTURES / "corpus" / "us_gov_small.jsonl"
DOC_ID = "us-gov-2022-10-10-missile-strikes-02"
EVIL_TEXT = (
    "Officials said the missile strikes on Kyiv were condemned by the White House. "
    "\x1b[31mRED ALERT\x1b[0m and a \x1b]8;;http://evil.example/\x1b\\hidden link\x1b]8;;\x1b\\ "
    "with [bold red]markup[/] and :thumbs_up: and a bell\x07, a C1 \x9b2J clear, "
    "a title \x1b]0;pwned\x07 change and a screen clear \x1b[2J. "
) * 3


@pytest.fixture
def cli(services: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke the CLI in-process, reusing the session's loaded model."""
    import compare.cli as cli_module

    def with_embedder(settings: Any) -> Any:
        from compare.services import Services

        built = Services(settings)
        built.__dict__["embedder"] = services.embedder
        return built

    monkeypatch.setattr(cli_module, "Services", with_embedder)
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def stored(cli: Any) -> Any:
    """The CLI over a store holding the four small US-government articles."""
    assert cli("ingest", str(SMALL), "--json").exit_code == 0
    return cli


def said(result: Any) -> str:
    """Everything printed (stdout and stderr), with rich's line wrapping undone."""
    return " ".join(result.output.split())


def refused(result: Any, *needles: str) -> None:
    """A clean refusal: exit 1 through typer (not a crash), no traceback, and each needle in the message."""
    text = said(result)
    assert result.exit_code == 1, text
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in text


# -- 1, 2: dates and --where ------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["2022-W40-1", "20221001", "last week", "2022-13-01"])
def test_an_unreadable_date_names_the_option_and_the_format(cli: Any, day: str) -> None:
    refused(cli("ask", "q", "--since", day), f"--since: unreadable date '{day}' (use YYYY-MM-DD)")
    refused(cli("search", "q", "--until", day), f"--until: unreadable date '{day}' (use YYYY-MM-DD)")


@pytest.mark.parametrize(
    ("where", "problem"),
    [("$or=x", "the key '$or' starts with '$'"), ("=x", "the key is empty"), ("event_id", "no '='")],
)
def test_a_bad_where_explains_the_key_value_syntax(cli: Any, where: str, problem: str) -> None:
    refused(cli("ask", "q", "-w", where), f"--where '{where}': {problem}", "-w key=value", "metadata field")


def test_filters_refuse_what_chroma_would_misread() -> None:
    """Callers other than the CLI (app, report specs, eval cases) get a ConfigError, not a Chroma ValueError."""
    for bad in (Filters(since="2022-W40-1"), Filters(until="2022-1-1"), Filters(where={"$or": "x"})):
        with pytest.raises(ConfigError):
            bad.to_chroma()
    assert Filters(since="2022-10-01", where={"event_id": "e1"}).to_chroma() is not None
    assert _parse_scalar("nan") == ["nan"] and _parse_scalar("1e999") == ["1e999"]
    assert _parse_scalar(str(2**70)) == [str(2**70)]
    assert _parse_scalar("7") == ["7", 7] and _parse_scalar("0.5") == ["0.5", 0.5]


# -- 3: a data dir that is a file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [("stats",), ("sources",), ("search", "q"), ("ask", "q"), ("doc", "x"), ("ingest", str(SMALL))],
)
def test_a_data_dir_that_is_a_file_is_named(cli: Any, tmp_path: Path, command: tuple[str, ...]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    refused(cli(*command, "--data-dir", str(blocker)), "is a file, not a directory", "--data-dir")
    refused(cli(*command, "--data-dir", str(blocker / "sub")), "cannot be created", "is a file")


def test_a_data_dir_from_the_environment_is_checked_before_eval_uses_it(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("NCOMPARE_DATA_DIR", str(blocker))
    refused(cli("eval", "smoke"), "is a file, not a directory", "NCOMPARE_DATA_DIR")
    assert cli("config", "--json").exit_code == 0  # config shows the settings, wherever they point


# -- 4: NCOMPARE_* variables and .env ----------------------------------------------------------------------


def test_a_bad_environment_variable_is_named_with_its_value(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCOMPARE_K_PER_SOURCE", "abc")
    refused(cli("ask", "q"), "NCOMPARE_K_PER_SOURCE: 'abc' is not an integer", "(environment)")
    monkeypatch.setenv("NCOMPARE_K_PER_SOURCE", "0")
    refused(cli("stats"), "NCOMPARE_K_PER_SOURCE: '0' must be at least 1")
    monkeypatch.delenv("NCOMPARE_K_PER_SOURCE")
    monkeypatch.setenv("NCOMPARE_LLM", "{bad")
    refused(cli("search", "q"), "NCOMPARE_LLM: unreadable value", "NCOMPARE_LLM__")


def test_a_bad_dotenv_value_names_the_file(cli: Any, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NCOMPARE_LLM__TEMPERATURE=9\nNCOMPARE_NO_SUCH=1\n")
    refused(
        cli("stats"),
        "NCOMPARE_LLM__TEMPERATURE: '9' must be at most 2",
        "NCOMPARE_NO_SUCH: '1' is not a setting",
        str(tmp_path / ".env"),
    )
    with pytest.raises(ConfigError, match="NCOMPARE_LLM__TEMPERATURE"):
        load_settings()


# -- 5: report --out ---------------------------------------------------------------------------------------


def test_report_out_must_be_a_folder(cli: Any, tmp_path: Path) -> None:
    spec = REPO / "examples" / "reports" / "us-ukraine-framing.yaml"
    out = tmp_path / "report.md"
    out.write_text("an earlier file")
    refused(cli("report", str(spec), "--out", str(out)), f"--out {out} is a file", "folder")
    refused(cli("report", str(spec), "--out", str(out / "sub"), "--dry-run"), f"is under {out}")
    assert out.read_text() == "an earlier file"


# -- 6: stance --pairs -------------------------------------------------------------------------------------


def test_bad_pair_lines_are_reported_and_the_rest_answered(stored: Any, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"claim": "Russia's missile strikes were condemned", "doc_id": DOC_ID},
        {"claim": "  ", "doc_id": DOC_ID},
        {"claim": "Ukraine gets air defence", "doc_id": "no-such-doc"},
        ["not", "an", "object"],
        {"claim": "The US will send more air defence", "doc_id": DOC_ID},
    ]
    pairs.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n", encoding="utf-8")
    result = stored("stance", "--pairs", str(pairs), "--json")
    refused(result, f'{pairs}:2: the "claim" is empty', f"{pairs}:3: unknown doc_id 'no-such-doc'")
    assert f"{pairs}:4: not a JSON object" in said(result) and f"{pairs}:6: not JSON" in said(result)
    rows = json.loads(result.stdout)
    assert [row["claim"] for row in rows] == [lines[0]["claim"], lines[4]["claim"]]  # type: ignore[index]


def test_a_latin1_pairs_file_says_it_is_not_utf8(stored: Any, tmp_path: Path) -> None:
    pairs = tmp_path / "latin1.jsonl"
    pairs.write_bytes(json.dumps({"claim": "café", "doc_id": DOC_ID}, ensure_ascii=False).encode("latin-1"))
    refused(stored("stance", "--pairs", str(pairs)), f"{pairs}:1: not UTF-8", "iconv -f latin1 -t utf-8")


# -- 7, 8: unknown sources, date ranges, empty queries -----------------------------------------------------


def test_an_unknown_source_is_named_with_the_known_ones(stored: Any) -> None:
    for command in (("ask", "q"), ("search", "q"), ("estimate", "q"), ("sources",), ("stance", "a claim")):
        refused(
            stored(*command, "-s", "whitehouse", "-s", "nosuch"),
            "no source 'nosuch' in this store; sources: department_of_defense, whitehouse",
        )


def test_deleting_an_unknown_source_names_it_and_deletes_nothing(stored: Any) -> None:
    refused(stored("delete", "--source", "whitehous"), "no source 'whitehous' in this store; sources:")
    assert "whitehouse" in stored("sources", "--json").output


def test_since_after_until_is_named(cli: Any) -> None:
    result = cli("ask", "q", "--since", "2024-01-01", "--until", "2023-01-01")
    refused(result, "--since 2024-01-01 is after --until 2023-01-01")


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_search_is_refused(cli: Any, text: str) -> None:
    refused(cli("search", text), "the search text is empty")


# -- 9: terminal escape sequences in stored text ------------------------------------------------------------


def test_terminal_text_drops_escape_sequences_and_controls_but_keeps_layout() -> None:
    assert terminal_text("a\x1b[31mred\x1b[0m b") == "ared b"
    assert terminal_text("x\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\y") == "xlinky"
    assert terminal_text("t\x1b]0;title\x07u \x9b2Jv \x9d8;;u\x9cw") == "tu v w"
    assert terminal_text("bell\x07 cr\r\n\ttab\x00 del\x7f lone\x1b") == "bell cr\n\ttab del lone"
    assert terminal_text("café — 中文 “quoted”") == "café — 中文 “quoted”"
    console = Console(record=True, width=200, emoji=False)
    console.print(safe_markup("[bold red]markup[/] :thumbs_up: \x1b[31mx"))
    assert console.export_text().strip() == "[bold red]markup[/] :thumbs_up: x"


def _no_controls(text: str) -> None:
    assert not any(ch in text for ch in "\x1b\x9b\x9d\x07"), repr(text[:300])


def test_doc_search_and_ask_print_article_text_not_terminal_commands(cli: Any, tmp_path: Path) -> None:
    article = tmp_path / "evil.jsonl"
    record = {
        "id": "evil-1",
        "source": "evil\x1b[5msource",
        "title": "T\x1b[2J [red]x[/]",
        "date": "2022-10-11",
    }
    article.write_text(json.dumps({**record, "text": EVIL_TEXT}) + "\n")
    assert cli("ingest", str(article), str(SMALL)).exit_code == 0
    outputs = [
        cli("doc", "evil-1"),
        cli("search", "missile strikes condemned RED ALERT", "-k", "3"),
        cli("ask", "Were the missile strikes on Kyiv condemned?"),
        cli("ask", "Were the missile strikes on Kyiv condemned?", "--md"),
        cli("sources"),
    ]
    for result in outputs:
        assert result.exit_code == 0, said(result)
        _no_controls(result.output)
    doc_text = said(outputs[0])
    assert "[bold red]markup[/]" in doc_text and ":thumbs_up:" in doc_text and "T [red]x[/]" in doc_text
    assert "hidden link" in doc_text and "evil.example" not in doc_text
    assert "RED ALERT" in said(outputs[1]) and "[bold red]markup[/]" in said(outputs[1])


# -- 10: an LLM server that answers HTTP 200 with something that is not JSON ------------------------------


@pytest.fixture
def html_server() -> Iterator[str]:
    """A loopback 'model server' answering every request with an HTML page and HTTP 200 (a proxy's login page)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b"<html><body>Please log in</body></html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.slow
def test_a_non_json_model_reply_is_a_message(
    stored: Any, html_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NCOMPARE_LLM__CACHE", "false")
    monkeypatch.setenv("NCOMPARE_LLM__MAX_RETRIES", "0")
    result = stored("ask", "Were the missile strikes condemned?", "-b", f"openai-compatible:m@{html_server}")
    refused(result, "not an OpenAI-compatible API response", "API root")
    spec = tmp_path / "spec.yaml"
    spec.write_text("title: T\nquestions:\n  - Were the missile strikes condemned?\n", encoding="utf-8")
    report = stored(
        "report", str(spec), "--out", str(tmp_path / "out"), "-b", f"openai-compatible:m@{html_server}"
    )
    assert report.exit_code == 1 and "Traceback" not in report.output
    assert "not an OpenAI-compatible API response" in (tmp_path / "out" / "report.md").read_text(
        encoding="utf-8"
    )
