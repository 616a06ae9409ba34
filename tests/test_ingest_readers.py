"""Readers: every input kind; each bad input is its own case (file/line named, hint, good items still out)."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fpdf import FPDF

from compare.errors import IngestError
from compare.ingest import readers
from compare.ingest.cleaning import clean_text
from compare.ingest.normalize import to_document
from compare.ingest.readers import RawDocument, ReadOptions, iter_raw
from compare.settings import IngestSettings
from compare.types import content_hash
from tests.conftest import loopback_http

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
POLITICO = FIXTURES / "politico-negotiating-position-2023.txt"
WP = FIXTURES / "wp-biden-reversals-2024-11.txt"
JSONL = FIXTURES / "articles.jsonl"
HTML = FIXTURES / "kyivpost-biden-reversals.html"
WP_LINES = [line for line in WP.read_text(encoding="utf-8").splitlines() if line.strip()]


def read(*inputs: str | Path, **options: Any) -> tuple[list[RawDocument], list[IngestError]]:
    items = list(iter_raw([str(item) for item in inputs], ReadOptions(**options)))
    docs = [item for item in items if isinstance(item, RawDocument)]
    errors = [item for item in items if isinstance(item, IngestError)]
    assert len(docs) + len(errors) == len(items)
    return docs, errors


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def only_error(errors: list[IngestError]) -> IngestError:
    assert len(errors) == 1, [str(error) for error in errors]
    assert errors[0].hint, "every error tells the user what to do"
    return errors[0]


def good_copy(tmp_path: Path) -> Path:
    """A good file in the same run as a bad one: it must still come out."""
    target = tmp_path / "good" / WP.name
    target.parent.mkdir(exist_ok=True)
    shutil.copy(WP, target)
    return target


# --- text files, sidecars, directories, globs -------------------------------------------------------------


def test_txt_seed_with_flags() -> None:
    docs, errors = read(POLITICO, source="kyivpost", date="2023-11-10")

    assert errors == []
    [doc] = docs
    assert doc.origin == str(POLITICO) and doc.format == "txt" and doc.line is None
    assert doc.fields == {"source": "kyivpost", "date": "2023-11-10"}
    assert _lines(doc.text) == _lines(POLITICO.read_text(encoding="utf-8"))  # raw: not cleaned yet


def test_sidecar_yaml_gives_metadata_and_flags_override_it(tmp_path: Path) -> None:
    article = tmp_path / WP.name
    shutil.copy(WP, article)
    sidecar = "source: kyivpost\ntitle: Biden reverses key policies\ndate: 2024-11-26\nevent_id: wp-1\n"
    (tmp_path / "wp-biden-reversals-2024-11.meta.yaml").write_text(sidecar, encoding="utf-8")

    [doc], errors = read(article, title="Flag title")

    assert errors == []
    assert doc.fields["source"] == "kyivpost"
    assert doc.fields["title"] == "Flag title"
    assert str(doc.fields["date"]) == "2024-11-26"
    assert doc.fields["event_id"] == "wp-1"


def test_sidecar_json(tmp_path: Path) -> None:
    article = tmp_path / "politico.txt"
    shutil.copy(POLITICO, article)
    (tmp_path / "politico.meta.json").write_text(json.dumps({"source": "kyivpost", "outlet": "Kyiv Post"}))

    [doc], _ = read(article)

    assert doc.fields == {"source": "kyivpost", "outlet": "Kyiv Post"}


def test_broken_sidecar_is_an_error_naming_the_sidecar(tmp_path: Path) -> None:
    article = tmp_path / "politico.txt"
    shutil.copy(POLITICO, article)
    (tmp_path / "politico.meta.yaml").write_text("source: [unclosed\n")

    docs, errors = read(article, good_copy(tmp_path))

    assert "politico.meta.yaml" in only_error(errors).origin
    assert [doc.origin for doc in docs] == [str(good_copy(tmp_path))]


def test_directory_is_recursive_sorted_and_skips_hidden_files_and_sidecars(tmp_path: Path) -> None:
    (tmp_path / "b" / "nested").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    shutil.copy(WP, tmp_path / "b" / "nested" / "z.txt")
    shutil.copy(WP, tmp_path / "b" / "a.txt")
    shutil.copy(POLITICO, tmp_path / "a.txt")
    shutil.copy(POLITICO, tmp_path / ".hidden.txt")
    shutil.copy(POLITICO, tmp_path / ".git" / "inside.txt")
    (tmp_path / "a.meta.yaml").write_text("source: kyivpost\n")

    docs, errors = read(tmp_path)

    assert errors == []
    assert [Path(doc.origin).relative_to(tmp_path).as_posix() for doc in docs] == [
        "a.txt",
        "b/a.txt",
        "b/nested/z.txt",
    ]
    assert docs[0].fields == {"source": "kyivpost"}


def test_glob_pattern(tmp_path: Path) -> None:
    (tmp_path / "examples" / "deep").mkdir(parents=True)
    shutil.copy(WP, tmp_path / "examples" / "deep" / "wp.txt")
    shutil.copy(POLITICO, tmp_path / "examples" / "politico.txt")
    shutil.copy(HTML, tmp_path / "examples" / "page.html")

    docs, errors = read(f"{tmp_path}/examples/**/*.txt")

    assert errors == []
    assert sorted(Path(doc.origin).name for doc in docs) == ["politico.txt", "wp.txt"]


def test_glob_without_matches(tmp_path: Path) -> None:
    docs, errors = read(f"{tmp_path}/nothing/**/*.txt", WP)

    assert "no files match" in only_error(errors).reason
    assert len(docs) == 1


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-article.txt"

    docs, errors = read(missing, WP)

    error = only_error(errors)
    assert error.origin == str(missing)
    assert "no such file" in str(error)
    assert [doc.origin for doc in docs] == [str(WP)]


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")

    docs, errors = read(empty, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(empty) and "empty file" in error.reason
    assert len(docs) == 1


def test_binary_file(tmp_path: Path) -> None:
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)

    docs, errors = read(binary, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(binary) and "binary" in error.reason
    assert len(docs) == 1


def test_non_utf8_text_names_the_encoding_and_suggests_iconv(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    text = "Le président a rencontré les ministres à Genève pour négocier un cessez-le-feu durable.\n" * 5
    latin.write_bytes(text.encode("latin-1"))

    docs, errors = read(latin, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(latin)
    assert "not UTF-8" in error.reason
    assert error.hint is not None and "iconv -f " in error.hint and "-t UTF-8" in error.hint
    assert len(docs) == 1


def test_utf8_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + WP.read_bytes().replace(b"\n", b"\r\n"))

    [doc], errors = read(bom)

    assert errors == []
    assert doc.text.splitlines() == WP_LINES


def test_unknown_extension_lists_supported_formats(tmp_path: Path) -> None:
    docx = tmp_path / "article.docx"
    docx.write_bytes(b"PK\x03\x04 not really a docx")

    docs, errors = read(docx, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(docx) and "unknown format" in error.reason
    assert (
        error.hint is not None
        and ".jsonl" in error.hint
        and ".pdf" in error.hint
        and "--format" in error.hint
    )
    assert len(docs) == 1


def test_forced_format_reads_any_extension(tmp_path: Path) -> None:
    article = tmp_path / "article.text"
    shutil.copy(WP, article)

    [doc], errors = read(article, format="txt")

    assert errors == [] and doc.format == "txt"


def test_unknown_forced_format() -> None:
    docs, errors = read(WP, format="docx")

    assert "docx" in only_error(errors).reason
    assert docs == []


def test_oversize_file(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Paragraph of a very long article.\n" * 100)

    docs, errors = read(big, good_copy(tmp_path), settings=IngestSettings(max_file_mb=0.003))

    error = only_error(errors)
    assert error.origin == str(big) and "too large" in error.reason
    assert len(docs) == 1


def test_hard_wrapped_text_is_reflowed(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.txt"
    wrapped.write_text(
        "U.S. President Joe Biden has reversed key policies on providing\n"
        "advanced weapons to Ukraine, including longer-range missiles and\n"
        "antipersonnel land mines.\n"
        "\n"
        "Many U.S. officials now acknowledge that Ukraine could be pushed\n"
        "into talks within months.\n"
    )

    [doc], _ = read(wrapped)

    assert doc.text == (
        "U.S. President Joe Biden has reversed key policies on providing advanced weapons to Ukraine, "
        "including longer-range missiles and antipersonnel land mines.\n\n"
        "Many U.S. officials now acknowledge that Ukraine could be pushed into talks within months."
    )


def test_markdown_is_stripped_to_prose(tmp_path: Path) -> None:
    article = tmp_path / "article.md"
    article.write_text(
        "---\nsource: kyivpost\ndate: 2024-11-26\n---\n"
        "# Biden reverses *key* policies\n\n"
        "U.S. President Joe Biden has **reversed** key policies on providing\n"
        "advanced weapons to [Ukraine](https://example.com/ukraine), including `ATACMS`.\n\n"
        "- Kurt Volker: _delays emboldened Moscow_\n"
        "- Antony Blinken: visit to Brussels\n\n"
        "![map](map.png)\n"
    )

    [doc], errors = read(article)

    assert errors == []
    assert doc.fields["source"] == "kyivpost"
    paragraphs = [line for line in doc.text.splitlines() if line.strip()]
    assert paragraphs == [
        "Biden reverses key policies",
        "U.S. President Joe Biden has reversed key policies on providing advanced weapons to Ukraine, "
        "including ATACMS.",
        "Kurt Volker: delays emboldened Moscow",
        "Antony Blinken: visit to Brussels",
    ]


# --- JSONL -------------------------------------------------------------------------------------------------


def test_jsonl_fixture_one_document_per_line() -> None:
    docs, errors = read(JSONL)

    assert errors == []
    records = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines()]
    assert [doc.fields["id"] for doc in docs] == [record["id"] for record in records]
    assert [doc.origin for doc in docs] == [f"{JSONL}:{n}" for n in range(1, len(records) + 1)]
    assert [doc.line for doc in docs] == list(range(1, len(records) + 1))
    first = docs[0]
    assert first.text == records[0]["text"] and "text" not in first.fields
    assert first.fields["event_id"] == records[0]["event_id"]
    assert first.fields["crawl_keywords"] == ["russia"]


def test_jsonl_flags_fill_missing_fields_only(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [{"text": WP_LINES[0], "source": "wp"}, {"text": WP_LINES[1]}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    docs, _ = read(path, source="kyivpost")

    assert [doc.fields["source"] for doc in docs] == ["wp", "kyivpost"]


def _bad_jsonl(tmp_path: Path, bad_line: str) -> Path:
    path = tmp_path / "articles.jsonl"
    good = [json.dumps({"source": "wp", "text": line}) for line in WP_LINES[:3]]
    path.write_text("\n".join([good[0], bad_line, "", good[1], good[2]]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"source": "wp", "text": "unterminated', "not valid JSON"),
        ('["a", "list"]', "expected a JSON object, got an array"),
        ('{"source": "wp", "title": "no text here"}', "has no text field"),
        ('{"source": "wp", "text": "   "}', "text"),
        ('{"source": "wp", "text": 42}', "text"),
    ],
    ids=["malformed", "not-object", "no-text", "blank-text", "number-text"],
)
def test_bad_jsonl_line_names_file_and_line_and_good_lines_still_come_out(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    path = _bad_jsonl(tmp_path, bad_line)

    docs, errors = read(path)

    error = only_error(errors)
    assert error.origin == str(path) and error.line == 2
    assert str(error).startswith(f"{path}:2: ")
    assert expected in error.reason
    assert [doc.line for doc in docs] == [1, 4, 5]


def test_jsonl_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    good = json.dumps({"source": "wp", "text": WP_LINES[0]}).encode()
    bad = json.dumps({"source": "lemonde", "text": "Le président à Genève"}, ensure_ascii=False).encode(
        "latin-1"
    )
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")

    docs, errors = read(path)

    error = only_error(errors)
    assert error.line == 2 and "not UTF-8" in error.reason
    assert [doc.line for doc in docs] == [1, 3]


def test_jsonl_binary_file_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00" + bytes(range(256)) * 40)

    docs, errors = read(path, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(path) and error.line is None and "binary" in error.reason
    assert len(docs) == 1


def test_unsupported_url_scheme() -> None:
    docs, errors = read("ftp://example.com/article.txt", WP)

    assert "scheme" in only_error(errors).reason
    assert len(docs) == 1


def test_jsonl_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")

    docs, errors = read(path, good_copy(tmp_path))

    assert "empty file" in only_error(errors).reason
    assert len(docs) == 1


def test_jsonl_line_over_the_size_limit_is_skipped_unread(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    huge = json.dumps({"source": "wp", "text": "word " * 2000})
    small = json.dumps({"source": "wp", "text": WP_LINES[0]})
    path.write_text(f"{small}\n{huge}\n{small}\n")

    docs, errors = read(path, settings=IngestSettings(max_file_mb=0.005))

    error = only_error(errors)
    assert error.line == 2 and "longer than" in error.reason
    assert [doc.line for doc in docs] == [1, 3]


def test_jsonl_is_streamed_not_loaded_whole(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_text(
        "".join(json.dumps({"source": "wp", "text": f"{WP_LINES[0]} {n}"}) + "\n" for n in range(50))
    )

    stream = iter_raw([str(path)], ReadOptions())
    first = next(stream)
    with path.open("a") as handle:  # lines appended after reading began are still read: nothing was preloaded
        handle.write(json.dumps({"source": "wp", "text": "appended later"}) + "\n")

    rest = list(stream)
    assert isinstance(first, RawDocument) and first.line == 1
    assert len(rest) == 50 and isinstance(rest[-1], RawDocument) and rest[-1].text == "appended later"


# --- HTML ------------------------------------------------------------------------------------------------


def test_html_page_main_text_and_metadata() -> None:
    [doc], errors = read(HTML)

    assert errors == []
    assert doc.format == "html"
    assert doc.fields["title"] == "Biden reverses key Ukraine weapons policies as talks loom"
    assert doc.fields["date"] == "2024-11-27"
    assert doc.fields["outlet"] == "Kyiv Post"
    assert doc.fields["url"] == "https://www.kyivpost.com/post/41234"
    assert doc.fields["source"] == "kyivpost.com"
    for furniture in (
        "Home",
        "Subscribe",
        "dataLayer",
        "querySelectorAll",
        "All rights reserved",
        "newsletter",
    ):
        assert furniture not in doc.text
    assert "Zelensky Says Ukraine Needs More Air Defense" not in doc.text  # the related-links aside
    cleaned = clean_text(doc.text)
    assert cleaned.text.split("\n\n") == WP_LINES  # the inline "Read also:" link went in cleaning


def test_html_flags_and_sidecar_override_page_metadata(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    shutil.copy(HTML, page)
    (tmp_path / "page.meta.yml").write_text("source: kyivpost\ndate: 2024-11-26\n")

    [doc], _ = read(page, title="Given title")

    assert doc.fields["source"] == "kyivpost"
    assert str(doc.fields["date"]) == "2024-11-26"
    assert doc.fields["title"] == "Given title"


def test_html_without_article_text(tmp_path: Path) -> None:
    page = tmp_path / "nav.html"
    page.write_text(
        "<html><head><title>App</title></head><body><div id='root'></div><script>render()</script>"
    )

    docs, errors = read(page, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(page) and "no article text" in error.reason
    assert len(docs) == 1


# --- PDF -------------------------------------------------------------------------------------------------


def _pdf(paragraphs: list[str], *, password: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for paragraph in paragraphs:
        # The core PDF fonts are Latin-1: use straight quotes in the generated file.
        pdf.multi_cell(0, 6, paragraph.replace("’", "'").replace("“", '"').replace("”", '"'))
        pdf.ln(4)
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    return bytes(pdf.output())


def test_pdf_with_text_layer(tmp_path: Path) -> None:
    path = tmp_path / "article.pdf"
    path.write_bytes(_pdf(WP_LINES[:3]))

    [doc], errors = read(path, source="wp")

    assert errors == [] and doc.format == "pdf"
    text = " ".join(doc.text.split())
    assert (
        "Biden has reversed key policies on providing advanced weapons to Ukraine, including longer-range"
        in text
    )
    assert "strengthening Ukraine's negotiating position" in text
    assert all(len(line) > 80 for line in doc.text.splitlines() if line.strip())  # wrapped lines rejoined


def test_pdf_without_text_layer_suggests_ocr(tmp_path: Path) -> None:
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (300, 120), "white").save(image, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=120)
    scanned = tmp_path / "scanned.pdf"
    scanned.write_bytes(bytes(pdf.output()))

    docs, errors = read(scanned, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(scanned) and "no text layer" in error.reason
    assert error.hint is not None and "ocrmypdf" in error.hint
    assert len(docs) == 1


def test_encrypted_pdf(tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(_pdf(WP_LINES[:2], password="secret"))

    docs, errors = read(locked, good_copy(tmp_path))

    error = only_error(errors)
    assert error.origin == str(locked) and "encrypted" in error.reason
    assert len(docs) == 1


def test_corrupt_pdf(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(_pdf(WP_LINES[:2])[:300])
    not_pdf = tmp_path / "renamed.pdf"
    not_pdf.write_text("this was a text file")

    docs, errors = read(broken, not_pdf, good_copy(tmp_path))

    assert [error.origin for error in errors] == [str(broken), str(not_pdf)]
    assert all("corrupt" in error.reason and error.hint for error in errors)
    assert len(docs) == 1


# --- URLs ------------------------------------------------------------------------------------------------


ARTICLE_HTML = HTML.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        _Handler.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        route = self.path.split("?")[0]
        if route == "/article":
            self._send(200, "text/html; charset=utf-8", ARTICLE_HTML)
        elif route == "/plain":
            self._send(200, "text/plain", "\n".join(WP_LINES).encode())
        elif route == "/missing":
            self._send(404, "text/html", b"<h1>Not found</h1>")
        elif route == "/pdf":
            self._send(200, "application/pdf", b"%PDF-1.4")
        elif route == "/big":
            self._stream_big()
        elif route == "/big-declared":
            self._send(200, "text/html", b"x" * 50_000)
        elif route == "/slow":
            time.sleep(1.5)
            self._send(200, "text/html", ARTICLE_HTML)
        elif route.startswith("/hops/"):
            left = int(route.rsplit("/", 1)[1])
            self._redirect(f"/hops/{left - 1}" if left else "/article")
        elif route == "/to":
            self._redirect(self.path.split("?u=", 1)[1])
        else:
            self._send(500, "text/plain", b"unexpected path")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream_big(self) -> None:
        # No Content-Length: the reader must count while streaming and stop at the cap.
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"<p>" + b"x" * 10_000 + b"</p>")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with loopback_http(_Handler) as url:
        yield url


LOCAL = IngestSettings(allow_private=True, url_timeout_s=5)


def test_url_html_page(server: str) -> None:
    docs, errors = read(f"{server}/article", WP, settings=LOCAL)

    assert errors == []
    doc = docs[0]
    assert doc.origin == f"{server}/article" and doc.format == "url"
    assert doc.fields["url"] == f"{server}/article"
    assert doc.fields["source"] == "127.0.0.1"  # the host, not the page's canonical URL
    assert doc.fields["title"] == "Biden reverses key Ukraine weapons policies as talks loom"
    assert clean_text(doc.text).text.split("\n\n") == WP_LINES
    sent = _Handler.requests[-1]
    assert sent["user-agent"].startswith("narrative-compare/")


def test_url_plain_text_and_flags(server: str) -> None:
    [doc], errors = read(f"{server}/plain", settings=LOCAL, source="wp", date="2024-11-26")

    assert errors == []
    assert doc.fields["source"] == "wp" and doc.fields["date"] == "2024-11-26"
    assert doc.text.splitlines() == WP_LINES


def test_url_source_falls_back_to_host_without_www(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = int(server.rsplit(":", 1)[1])
    real = readers.socket.getaddrinfo

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "www.news.test" else host, *args, **kwargs)

    monkeypatch.setattr(readers.socket, "getaddrinfo", fake_dns)

    [doc], errors = read(f"http://www.news.test:{port}/article", settings=LOCAL)

    assert errors == []
    assert doc.fields["source"] == "news.test"
    assert _Handler.requests[-1]["host"] == f"www.news.test:{port}"  # connected to the checked address


def test_url_404(server: str) -> None:
    docs, errors = read(f"{server}/missing", WP, settings=LOCAL)

    error = only_error(errors)
    assert error.origin == f"{server}/missing" and "HTTP 404" in error.reason
    assert len(docs) == 1


def test_url_non_html_content_type(server: str) -> None:
    docs, errors = read(f"{server}/pdf", WP, settings=LOCAL)

    error = only_error(errors)
    assert "application/pdf" in error.reason
    assert len(docs) == 1


@pytest.mark.parametrize("route", ["/big", "/big-declared"])
def test_url_body_over_the_cap(server: str, route: str) -> None:
    settings = IngestSettings(allow_private=True, url_max_mb=0.02)
    started = time.monotonic()

    docs, errors = read(f"{server}{route}", WP, settings=settings)

    assert "larger than 0.02 MB" in only_error(errors).reason
    assert len(docs) == 1
    assert time.monotonic() - started < 2


def test_url_timeout(server: str) -> None:
    settings = IngestSettings(allow_private=True, url_timeout_s=0.3)

    docs, errors = read(f"{server}/slow", WP, settings=settings)

    assert "timed out" in only_error(errors).reason
    assert len(docs) == 1


def test_url_redirects_followed_up_to_the_limit(server: str) -> None:
    settings = IngestSettings(allow_private=True, url_max_redirects=3)

    [doc], errors = read(f"{server}/hops/2", settings=settings)
    assert errors == [] and doc.fields["url"] == f"{server}/article"

    docs, errors = read(f"{server}/hops/9", WP, settings=settings)
    assert "too many redirects" in only_error(errors).reason
    assert len(docs) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/article",
        "http://10.0.0.1/article",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/article",
        "http://localhost/article",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
    ],
)
def test_private_addresses_refused_before_connecting(url: str) -> None:
    # conftest turns any non-loopback connect() into NetworkBlocked: an IngestError here means no connection.
    docs, errors = read(url, WP)

    error = only_error(errors)
    assert error.origin == url and "non-public address" in error.reason
    assert "ALLOW_PRIVATE" in (error.hint or "")
    assert len(docs) == 1


@pytest.mark.parametrize("target", ["http://10.0.0.1/admin", "http://169.254.169.254/latest/meta-data/"])
def test_redirect_to_a_private_address_refused(
    server: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Let the loopback test server count as public, so that only the redirect hop is private.
    monkeypatch.setattr(readers, "_is_public", lambda address: address.is_loopback)

    docs, errors = read(f"{server}/to?u={target}", WP)

    error = only_error(errors)
    assert error.origin == f"{server}/to?u={target}"
    assert "non-public address" in error.reason and target.split("/")[2] in error.reason
    assert len(docs) == 1


def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise readers.socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(readers.socket, "getaddrinfo", no_dns)

    docs, errors = read("https://no-such-host.invalid/article", WP)

    assert "cannot resolve host" in only_error(errors).reason
    assert len(docs) == 1


# --- normalize.to_document -------------------------------------------------------------------------------


def _raw(text: str | None = None, **fields: Any) -> RawDocument:
    return RawDocument(origin="in/article.txt", format="txt", text=text or WP.read_text(), fields=fields)


def _jsonl_raw(**fields: Any) -> RawDocument:
    return RawDocument(origin="in/a.jsonl:7", format="jsonl", text="", fields=fields, line=7)


SETTINGS = IngestSettings()
CLEAN = "\n\n".join(WP_LINES)


def test_document_from_seed_with_metadata() -> None:
    raw = _raw(
        source=" kyivpost ", date="Nov. 26, 2024", title="Biden reverses", event_id="e1", tags=["a", "b"]
    )

    doc = to_document(raw, CLEAN, SETTINGS)

    assert doc.id == content_hash(CLEAN)
    assert (doc.source, doc.date, doc.title, doc.origin) == (
        "kyivpost",
        "2024-11-26",
        "Biden reverses",
        raw.origin,
    )
    assert doc.metadata == {"event_id": "e1", "tags": '["a", "b"]'}
    assert doc.text == CLEAN


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-11-26", "2024-11-26"),
        ("Nov. 26, 2024", "2024-11-26"),
        ("26 November 2024", "2024-11-26"),
        ("2024-11-26T23:30:00-05:00", "2024-11-26"),
        (None, None),
        ("", None),
    ],
)
def test_dates(value: str | None, expected: str | None) -> None:
    assert to_document(_raw(source="wp", date=value), CLEAN, SETTINGS).date == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45", "Nov 2024"])
def test_unusable_date_is_an_error_naming_the_value(value: str) -> None:
    with pytest.raises(IngestError) as caught:
        to_document(_jsonl_raw(source="wp", date=value), CLEAN, SETTINGS)

    assert caught.value.origin == "in/a.jsonl" and caught.value.line == 7
    assert repr(value) in caught.value.reason


def test_given_ids() -> None:
    assert to_document(_raw(source="wp", id="  basil-1 "), CLEAN, SETTINGS).id == "basil-1"
    assert to_document(_raw(source="wp", id=42), CLEAN, SETTINGS).id == "42"
    for bad in ("", "  ", ["x"], True):
        with pytest.raises(IngestError, match="invalid id"):
            to_document(_raw(source="wp", id=bad), CLEAN, SETTINGS)


def test_missing_source_says_how_to_give_one() -> None:
    with pytest.raises(IngestError) as caught:
        to_document(_raw(), CLEAN, SETTINGS)

    assert caught.value.reason == "no source"
    assert caught.value.hint == "pass --source NAME or add a sidecar <stem>.meta.yaml with source: NAME"
    assert str(caught.value).startswith("in/article.txt: no source")


def test_too_short_after_cleaning() -> None:
    with pytest.raises(IngestError) as caught:
        to_document(_raw(source="wp"), "Advertisement-free stub.", SETTINGS)

    assert caught.value.reason == "too short to be an article (24 chars, minimum 200)"


def test_jsonl_fixture_end_to_end() -> None:
    docs, _ = read(JSONL)

    built = [to_document(raw, clean_text(raw.text).text, SETTINGS) for raw in docs]

    assert [doc.id for doc in built] == [raw.fields["id"] for raw in docs]
    basil = built[2]
    assert basil.source == "hpo" and basil.date == "2018-08-18" and basil.origin == f"{JSONL}:3"
    assert json.loads(str(basil.metadata["bias_spans"]))[0]["txt"]
    assert basil.metadata["basil_file"] == docs[2].fields["basil_file"]
