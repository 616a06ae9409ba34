"""Read inputs (files, directories, globs, URLs) into raw documents, one at a time.

Each item becomes a `RawDocument` (text not yet cleaned) or an `IngestError` that says which input failed and
what to do; a bad item never stops the good ones. JSONL is streamed line by line, never loaded whole.
"""

from __future__ import annotations

import codecs
import errno
import glob
import io
import ipaddress
import itertools
import json
import os
import re
import socket
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import httpx
import yaml

from compare import __version__
from compare.errors import IngestError, NotArticlesError, SkippedInput
from compare.settings import IngestSettings

FORMATS = ("jsonl", "txt", "md", "html", "pdf")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SIDECAR_SUFFIXES = (".meta.json", ".meta.yaml", ".meta.yml")
FLAG_FIELDS = ("source", "outlet", "title", "date", "url")
USER_AGENT = f"narrative-compare/{__version__} (news comparison tool; fetches one article page per request)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_MB = 1024 * 1024
_SUPPORTED = ", ".join(sorted(EXTENSIONS))
# Characters that end a sentence (after closing quotes and brackets are set aside).
_TERMINAL = ".!?…:;"
_CLOSERS = "\"'”’»)]"


@dataclass
class ReadOptions:
    """CLI flags. For single files (txt, md, html, pdf, URL) explicit flags override sidecar and page values;
    for JSONL they only fill fields a line leaves out."""

    source: str | None = None
    outlet: str | None = None
    title: str | None = None
    date: str | None = None
    url: str | None = None
    format: str | None = None
    settings: IngestSettings = field(default_factory=IngestSettings)

    def flags(self) -> dict[str, str]:
        return {name: value for name in FLAG_FIELDS if (value := getattr(self, name)) is not None}


@dataclass
class RawDocument:
    """One input item before cleaning; `fields` holds id/source/outlet/title/date/url and extra metadata."""

    origin: str
    format: str
    text: str
    fields: dict[str, Any]
    line: int | None = None
    warnings: list[str] = field(default_factory=list)

    def error(self, message: str, *, hint: str | None = None) -> IngestError:
        """An IngestError about this item, naming its file (and JSONL line) or URL."""
        suffix = f":{self.line}"
        path = (
            self.origin[: -len(suffix)]
            if self.line is not None and self.origin.endswith(suffix)
            else self.origin
        )
        return IngestError(path, message, hint=hint, line=self.line)


def iter_raw(inputs: Sequence[str], options: ReadOptions) -> Iterator[RawDocument | IngestError]:
    """Yield a RawDocument or an IngestError for every item of every input, in order."""
    if options.format is not None and options.format not in FORMATS:
        hint = f"use one of: {', '.join(FORMATS)}"
        yield IngestError("--format", f"unknown format {options.format!r}", hint=hint)
        return
    for item in inputs:
        if re.match(r"https?://", item, re.IGNORECASE):
            yield _read_url(item, options)
            continue
        if re.match(r"[a-z][a-z0-9+.-]*://", item, re.IGNORECASE):
            yield IngestError(
                item, "unsupported URL scheme", hint="only http:// and https:// pages are fetched"
            )
            continue
        in_folder = Path(item).is_dir() or glob.has_magic(item)
        for path in _expand(item):
            if isinstance(path, IngestError):
                yield path
            else:
                yield from _with_folder_source(_read_path(path, options), path, in_folder)


def _with_folder_source(
    items: Iterator[RawDocument | IngestError], path: Path, in_folder: bool
) -> Iterator[RawDocument | IngestError]:
    """In a folder, a document that names no source takes its sub-folder's name (and says so)."""
    for raw in items:
        if in_folder and isinstance(raw, NotArticlesError):
            # Corpus folders often hold events/labels files beside the articles: skip them, do not fail.
            raw = SkippedInput(raw.origin, raw.reason, hint=raw.hint, line=raw.line)
        if in_folder and isinstance(raw, RawDocument) and not raw.fields.get("source"):
            raw.fields["source"] = path.parent.name
            raw.warnings.append(
                f"no source: used the folder name {path.parent.name!r} "
                "(pass --source or a sidecar <stem>.meta.yaml to set it)"
            )
        yield raw


# --- finding files -------------------------------------------------------------------------------------


def _expand(item: str) -> Iterator[Path | IngestError]:
    path = Path(item)
    if path.is_dir():
        yield from _walk(path)
    elif path.exists() or path.is_symlink():  # a broken or looping link is named by the reader
        yield path
    elif glob.has_magic(item):
        yield from _expand_glob(item)
    else:
        yield _missing(item)


def _missing(item: str) -> IngestError:
    if item.startswith("www."):
        return IngestError(
            item, "no such file", hint=f"to fetch a web page, give the full URL: https://{item}"
        )
    hint = f"check the spelling; relative paths start from {Path.cwd()}"
    return IngestError(item, "no such file or directory", hint=hint)


def _expand_glob(pattern: str) -> Iterator[Path | IngestError]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        hint = "check the pattern; quote it ('examples/**/*.txt') so the shell does not expand it first"
        yield IngestError(pattern, "no files match this pattern", hint=hint)
    for match in matches:
        path = Path(match)
        if path.is_dir():
            yield from _walk(path)
        elif not _is_sidecar(path):
            yield path


#: Files that describe a corpus rather than belong to it; skipped when walking a folder (not when named).
_CORPUS_DOCS = re.compile(r"^(readme|license|licence|changelog|notice|copying|contributing)([._-].*)?$", re.I)


def _walk(root: Path) -> Iterator[Path]:
    """Files under root, recursively, sorted, without hidden files, sidecars and README/LICENSE files."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and not _is_sidecar(path) and not _CORPUS_DOCS.match(name):
                yield path


def _is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIXES)


# --- files -----------------------------------------------------------------------------------------------


def _read_path(path: Path, options: ReadOptions) -> Iterator[RawDocument | IngestError]:
    try:
        _check_regular(path)
    except IngestError as exc:
        yield exc
        return
    fmt = options.format or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        kind = f"extension {path.suffix!r}" if path.suffix else "no extension"
        hint = f"supported: {_SUPPORTED}; or force one with --format {{{'|'.join(FORMATS)}}}"
        yield IngestError(str(path), f"unknown format ({kind})", hint=hint)
        return
    if fmt == "jsonl":
        yield from _read_jsonl(path, options)
        return
    try:
        yield _read_single(path, fmt, options)
    except IngestError as exc:
        yield exc


def _read_single(path: Path, fmt: str, options: ReadOptions) -> RawDocument:
    origin = str(path)
    data = _read_bytes(path, options.settings)
    text, found = _FILE_READERS[fmt](origin, data, options)
    fields = {**found, **_sidecar(path), **options.flags()}
    if fmt == "html" and not fields.get("source"):
        fields["source"] = _host(fields.get("url")) or found.get("outlet")
    return RawDocument(origin=origin, format=fmt, text=text, fields=_drop_none(fields))


Found = tuple[str, dict[str, Any]]  # (text, metadata found inside the file)


def _txt_file(origin: str, data: bytes, options: ReadOptions) -> Found:
    return reflow(_decode_text(origin, data)), {}  # plain text may be hard-wrapped


def _md_file(origin: str, data: bytes, options: ReadOptions) -> Found:
    found, body = _front_matter(origin, _decode_text(origin, data))
    return markdown_to_text(body), found  # Markdown joins its own soft line breaks


def _html_file(origin: str, data: bytes, options: ReadOptions) -> Found:
    _check_text_bytes(origin, data)
    return _html_text(origin, data, url=options.url)


def _pdf_file(origin: str, data: bytes, options: ReadOptions) -> Found:
    return _pdf_text(origin, data), {}


_FILE_READERS: dict[str, Callable[[str, bytes, ReadOptions], Found]] = {
    "txt": _txt_file,
    "md": _md_file,
    "html": _html_file,
    "pdf": _pdf_file,
}


def _read_bytes(path: Path, settings: IngestSettings) -> bytes:
    """The whole file, never more than max_file_mb: st_size can lie (procfs, a file still being written)."""
    origin = str(path)
    limit = int(settings.max_file_mb * _MB)
    with _open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise _too_large(origin, settings, f"{size / _MB:.1f} MB")
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise _cannot_read(origin, exc) from exc
    if len(data) > limit:
        raise _too_large(origin, settings, f"more than {settings.max_file_mb:g} MB read")
    if not data.strip():
        raise IngestError(
            origin, "empty file", hint="remove it from the input, or fill it with the article text"
        )
    return data


def _too_large(origin: str, settings: IngestSettings, size: str) -> IngestError:
    hint = "split it, or raise the limit with NCOMPARE_INGEST__MAX_FILE_MB"
    return IngestError(origin, f"file too large ({size}, limit {settings.max_file_mb:g} MB)", hint=hint)


def _check_regular(path: Path) -> None:
    """Refuse FIFOs, devices and sockets before opening them: a FIFO blocks, /dev/zero never ends."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _cannot_read(str(path), exc) from exc
    if not stat.S_ISREG(mode):
        raise _not_regular(str(path), mode)


# O_NONBLOCK: opening a FIFO swapped in after _check_regular returns at once (fstat then refuses it);
# O_NOCTTY: opening a terminal never makes it ours. Neither changes how a regular file is read.
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
)


def _open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without ever blocking on a FIFO; anything else is an IngestError."""
    origin = str(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _cannot_read(origin, exc) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(origin, mode)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


_FILE_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISFIFO, "a FIFO, i.e. a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _not_regular(origin: str, mode: int) -> IngestError:
    kind = next((name for is_kind, name in _FILE_KINDS if is_kind(mode)), "not a plain file")
    hint = "skip it, or copy the content to a regular file and ingest that"
    return IngestError(origin, f"not a regular file ({kind})", hint=hint)


def _cannot_read(origin: str, exc: OSError) -> IngestError:
    """An OSError as advice: a link loop or a broken link is not a permissions problem."""
    if exc.errno == errno.ELOOP:
        hint = "fix or remove the link (ls -l shows where each link points)"
        return IngestError(origin, "symbolic link loop (the link leads back to itself)", hint=hint)
    if exc.errno == errno.ENOENT and os.path.islink(origin):
        message = f"broken symbolic link (its target {os.readlink(origin)} does not exist)"
        return IngestError(origin, message, hint="fix or remove the link")
    return IngestError(origin, f"cannot read: {exc.strerror or exc}", hint="check the file's permissions")


def _check_text_bytes(origin: str, data: bytes) -> None:
    """Refuse binary data early: NUL bytes mean it is not text, unless a UTF-16/32 byte-order mark says so."""
    head = data[:8192]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        hint = "ingest the text itself (.txt, .md, .html, .pdf, .jsonl), not a binary file"
        raise IngestError(origin, "binary file (contains NUL bytes), not text", hint=hint)


def _decode_text(origin: str, data: bytes) -> str:
    """UTF-8 (with or without BOM) or an error naming the likely encoding; never a silent guess."""
    _check_text_bytes(origin, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _encoding_error(origin, data, exc) from exc
    if _control_ratio(text) > 0.05:
        raise IngestError(
            origin, "binary file (mostly control characters), not text", hint="ingest a text file"
        )
    return text


def _encoding_error(origin: str, data: bytes, exc: UnicodeDecodeError) -> IngestError:
    match = charset_normalizer.from_bytes(data[: 256 * 1024]).best()
    if match is None:
        return IngestError(origin, "binary file (not text in any known encoding)", hint="ingest a text file")
    name = _iconv_name(match.encoding)
    target = Path(origin).with_suffix(f".utf8{Path(origin).suffix}")
    message = f"not UTF-8 text (invalid byte at offset {exc.start}); it looks like {name}"
    hint = f"convert it to UTF-8 first: iconv -f {name} -t UTF-8 '{origin}' > '{target}'"
    return IngestError(origin, message, hint=hint)


def _iconv_name(python_name: str) -> str:
    """charset-normalizer gives Python codec names (cp1252, latin_1); iconv wants WINDOWS-1252, ISO-8859-1."""
    name = codecs.lookup(python_name).name  # canonical: 'cp1252', 'iso8859-1', 'utf-16', 'mac-roman'
    if re.fullmatch(r"cp125\d", name):
        return "WINDOWS-" + name[2:]
    if name.startswith("iso8859-"):
        return "ISO-8859-" + name.split("-", 1)[1]
    return {"mac-roman": "MACINTOSH", "latin-1": "ISO-8859-1"}.get(name, name.upper())


def _control_ratio(text: str) -> float:
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls / max(len(sample), 1)


def _sidecar(path: Path) -> dict[str, Any]:
    """Metadata from <stem>.meta.json / .meta.yaml / .meta.yml beside the file ({} if there is none)."""
    for suffix in SIDECAR_SUFFIXES:
        sidecar = path.with_name(path.stem + suffix)
        if sidecar.is_file():
            return _load_mapping(sidecar)
    return {}


def _load_mapping(sidecar: Path) -> dict[str, Any]:
    hint = "a sidecar holds one mapping, e.g. 'source: kyivpost' and 'date: 2024-11-26', one per line"
    try:
        text = sidecar.read_text(encoding="utf-8-sig")
        data = json.loads(text) if sidecar.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise IngestError(str(sidecar), f"cannot read metadata sidecar: {exc}", hint=hint) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise IngestError(str(sidecar), f"sidecar must be a mapping, not {type(data).__name__}", hint=hint)
    return {str(key): value for key, value in data.items()}


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


# --- JSONL -----------------------------------------------------------------------------------------------


def _read_jsonl(path: Path, options: ReadOptions) -> Iterator[RawDocument | IngestError]:
    """One RawDocument per non-blank line; a bad line yields an error and the next line is read."""
    origin = str(path)
    try:
        defaults = {**_sidecar(path), **options.flags()}
        handle = _open_regular(path)
    except IngestError as exc:
        yield exc
        return
    limit = int(options.settings.max_file_mb * _MB)
    records = 0
    with handle:
        try:
            _check_text_bytes(origin, handle.read(8192))  # one error for a binary file, not one per "line"
        except IngestError as exc:
            yield exc
            return
        handle.seek(0)
        for number, line in _lines(handle, limit):
            if line is not None and not line.strip():
                continue
            records += 1
            result = _jsonl_record(origin, number, line, defaults, options.settings)
            if records == 1 and _not_articles(line, result):
                yield _not_an_article_file(origin, number, line)
                return
            yield result
    if records == 0:
        yield IngestError(origin, "empty file (no JSON lines)", hint="put one JSON object per line")


def _not_articles(line: bytes | None, result: RawDocument | IngestError) -> bool:
    """The first record is a JSON object with no "text" key at all: the file holds something else."""
    if not isinstance(result, IngestError) or line is None:
        return False
    try:
        record = json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and "text" not in record


def _not_an_article_file(origin: str, number: int, line: bytes | None) -> IngestError:
    keys = ", ".join(sorted(json.loads((line or b"{}").decode("utf-8-sig")))[:8])
    return NotArticlesError(
        origin,
        f'line {number} has no "text" field (fields: {keys}): this does not look like a file of articles; '
        "skipped the whole file",
        hint='articles need a "text" field; if this file is metadata (events, labels), leave it out',
        line=number,
    )


def _lines(handle: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; None for a line longer than `limit`, which is skipped unread."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := handle.readline(_MB)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def _jsonl_record(
    origin: str, number: int, line: bytes | None, defaults: dict[str, Any], settings: IngestSettings
) -> RawDocument | IngestError:
    hint = 'each line must be one JSON object with a "text" field, e.g. {"source": "nyt", "text": "..."}'
    if line is None:
        message = f"line longer than {settings.max_file_mb:g} MB"
        return IngestError(
            origin, message, hint="split the text, or raise NCOMPARE_INGEST__MAX_FILE_MB", line=number
        )
    try:
        record = json.loads(line.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return _with_line(_encoding_error(origin, line, exc), number)
    except json.JSONDecodeError as exc:
        return IngestError(origin, f"not valid JSON: {exc.msg} (column {exc.colno})", hint=hint, line=number)
    if not isinstance(record, dict):
        return IngestError(
            origin, f"expected a JSON object, got {_json_type(record)}", hint=hint, line=number
        )
    text = record.pop("text", None)
    if not isinstance(text, str) or not text.strip():
        problem = "has no text field" if text is None else f'"text" is {_json_type(text)}, not article text'
        return IngestError(origin, problem, hint=hint, line=number)
    fields = {**defaults, **_drop_none(record)}
    return RawDocument(origin=f"{origin}:{number}", format="jsonl", text=text, fields=fields, line=number)


def _with_line(error: IngestError, number: int) -> IngestError:
    return IngestError(error.origin, error.reason, hint=error.hint, line=number)


def _json_type(value: object) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# --- Markdown and plain-text layout ---------------------------------------------------------------------


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^```.*$|^~~~.*$", re.MULTILINE), ""),  # code fences (their content stays)
    (re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE), ""),  # reference link definitions
    (re.compile(r"^ {0,3}(?:[-*_][ \t]*){3,}$", re.MULTILINE), ""),  # horizontal rules
    (re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$", re.MULTILINE), ""),  # setext heading underlines
    (re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE), r"\n\1\n"),  # ATX headings: own paragraph
    (re.compile(r"^ {0,3}>[ \t]?", re.MULTILINE), ""),  # blockquote markers
    (re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.MULTILINE), ""),  # list markers
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # inline links -> their text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links -> their text
    (re.compile(r"<[A-Za-z/][^>\n]*>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *emphasis*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _emphasis_ (not snake_case)
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
)


def _front_matter(origin: str, text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (--- ... ---) at the top of a Markdown file, as metadata."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise IngestError(
            origin, f"front matter is not valid YAML: {exc}", hint="fix or remove the --- block"
        ) from exc
    found = {str(key): value for key, value in data.items()} if isinstance(data, dict) else {}
    return found, text[match.end() :]


_MD_BLOCK_START = re.compile(r" {0,3}(?:#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>|\||```|~~~|(?:[-*_=]\s*){3,}$)")
_MD_BLOCK_END = re.compile(r" {0,3}(?:#{1,6}\s|\||```|~~~|(?:[-*_=]\s*){3,}$)")  # nothing joins onto these


def markdown_to_text(text: str) -> str:
    """Light Markdown stripping so the text is prose: headings, emphasis, links, lists, quotes."""
    text = _join_soft_breaks(text.replace("\r\n", "\n").replace("\r", "\n"))
    for pattern, replacement in _MD_RULES:
        text = pattern.sub(replacement, text)
    return text


def _join_soft_breaks(text: str) -> str:
    """Markdown semantics: lines of one paragraph are joined, except at list items, headings, quotes, tables,
    fences, and hard breaks (two trailing spaces or a backslash)."""
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        starts_block = bool(_MD_BLOCK_START.match(line))
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        prev = out[-1] if out else ""
        joinable = prev.strip() and line.strip() and not starts_block and not in_fence
        if joinable and not _MD_BLOCK_END.match(prev) and not prev.endswith(("  ", "\\")):
            out[-1] = f"{prev.rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


def _ends_sentence(line: str) -> bool:
    stripped = line.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _TERMINAL


def _starts_lower(line: str) -> bool:
    stripped = line.lstrip().lstrip(_CLOSERS + "(“‘«")
    return bool(stripped) and stripped[0].islower()


def reflow(text: str) -> str:
    """Join hard-wrapped lines back into paragraphs; leave one-paragraph-per-line text alone.

    A line is joined to the next when it stops mid-sentence and the next begins in lower case, or, in a block
    that looks hard-wrapped (many lines continue in lower case, as in PDFs and 72-column text), when it is
    nearly as long as the block's full lines (a short line ends its paragraph).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n[ \t]*\n", text)
    return "\n\n".join(_reflow_block(block) for block in blocks)


def _reflow_block(block: str) -> str:
    lines = [line.strip() for line in block.split("\n") if line.strip()]
    if len(lines) < 2:
        return "\n".join(lines)
    pairs = list(itertools.pairwise(lines))
    wrapped = len(lines) >= 3 and sum(_starts_lower(nxt) for _, nxt in pairs) >= 0.3 * len(pairs)
    full = sorted(len(line) for line in lines)[int(0.8 * (len(lines) - 1))]
    out = [lines[0]]
    for prev, nxt in pairs:
        if _continues(prev, nxt, wrapped=wrapped, full=full):
            out[-1] = _join(out[-1], nxt)
        else:
            out.append(nxt)
    return "\n".join(out)


def _continues(prev: str, nxt: str, *, wrapped: bool, full: int) -> bool:
    if not _ends_sentence(prev) and _starts_lower(nxt):
        return True
    return wrapped and len(prev) >= 0.75 * full


def _join(left: str, right: str) -> str:
    # "well-\nknown" keeps its hyphen; we cannot tell a soft hyphenation from a real one.
    if left.endswith("-") and len(left) > 1 and left[-2].isalpha() and _starts_lower(right):
        return left + right
    return f"{left} {right}"


# --- HTML ------------------------------------------------------------------------------------------------


def _html_text(origin: str, html: bytes | str, *, url: str | None) -> tuple[str, dict[str, Any]]:
    """Main text and metadata (title, date, outlet, url, author) of a page, via trafilatura."""
    import trafilatura  # slow to import; only HTML needs it

    extracted = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        # Only dates the page states in its markup: a date guessed from body text would be invented.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    data = (
        extracted if isinstance(extracted, dict) else (extracted.as_dict() if extracted is not None else {})
    )
    text = data.get("text") or ""
    if not text.strip():
        hint = "the page may be only navigation or need JavaScript: save the article as .txt and ingest that"
        raise IngestError(origin, "no article text found in the HTML", hint=hint)
    title = data.get("title")
    first, _, rest = text.strip().partition("\n")
    if title and rest.strip() and " ".join(first.split()) == " ".join(str(title).split()):
        text = rest  # the page's <h1>: kept as the title, not as the first paragraph
    found = {
        "title": title,
        "date": data.get("date"),
        "outlet": data.get("sitename"),
        "url": data.get("url") or url,
        "author": data.get("author"),
    }
    return text, _drop_none(found)


def _host(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or None


# --- PDF -------------------------------------------------------------------------------------------------


def _pdf_text(origin: str, data: bytes) -> str:
    import pypdf  # only PDFs need it

    corrupt_hint = "re-download or re-export it; if it opens in a viewer, print it to a new PDF"
    if b"%PDF-" not in data[:1024]:
        raise IngestError(
            origin, "not a PDF (no %PDF header); the file is corrupt or mislabelled", hint=corrupt_hint
        )
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        _decrypt(origin, reader)
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except Exception as exc:  # pypdf raises many kinds of error on damaged files; all mean "corrupt"
        raise IngestError(origin, f"corrupt PDF: {exc}", hint=corrupt_hint) from exc
    text = reflow("\n".join(_strip_page_furniture(pages)))
    if sum(ch.isalpha() for ch in text) < 20:
        hint = f"it is probably scanned pages: run OCR first (e.g. ocrmypdf '{origin}' ocr.pdf), ingest that"
        raise IngestError(origin, "PDF has no text layer", hint=hint)
    return text


def _decrypt(origin: str, reader: Any) -> None:
    if not reader.is_encrypted:
        return
    try:
        opened = reader.decrypt("")  # many PDFs are encrypted only against editing, with an empty password
    except Exception:  # missing crypto backend or unsupported scheme: same advice
        opened = 0
    if not opened:
        hint = f"decrypt it first, e.g. qpdf --decrypt --password=PASSWORD '{origin}' plain.pdf"
        raise IngestError(origin, "encrypted PDF (needs a password)", hint=hint)


def _strip_page_furniture(pages: list[str]) -> list[str]:
    """Drop running headers/footers (first/last two lines repeated on several pages) and bare page numbers."""
    split = [[line.strip() for line in page.splitlines() if line.strip()] for page in pages]
    edges: Counter[str] = Counter()
    for lines in split:
        edges.update({_digits_blank(line) for line in lines[:2] + lines[-2:]})
    repeated = {key for key, count in edges.items() if count >= 2} if len(split) >= 2 else set()
    kept: list[str] = []
    for lines in split:
        for index, line in enumerate(lines):
            at_edge = index < 2 or index >= len(lines) - 2
            if at_edge and (
                _digits_blank(line) in repeated or re.fullmatch(r"(page )?\d+( of \d+)?", line, re.I)
            ):
                continue
            kept.append(line)
    return kept


def _digits_blank(line: str) -> str:
    return re.sub(r"\d+", "#", line)


# --- URLs ------------------------------------------------------------------------------------------------


@dataclass
class _Fetched:
    url: str
    media_type: str
    charset: str | None
    body: bytes


def _read_url(url: str, options: ReadOptions) -> RawDocument | IngestError:
    try:
        fetched = _fetch(url, options.settings)
        text, found = _page_content(url, fetched)
    except IngestError as exc:
        return exc
    fields = {**found, "url": fetched.url, **options.flags()}
    fields.setdefault("source", _host(fetched.url))
    return RawDocument(origin=url, format="url", text=text, fields=_drop_none(fields))


def _page_content(url: str, fetched: _Fetched) -> Found:
    if fetched.media_type in TEXT_TYPES:
        return reflow(_decode_body(url, fetched)), {}
    # Without a declared charset trafilatura reads the page's own <meta charset> from the bytes.
    html: bytes | str = _decode_body(url, fetched) if fetched.charset else fetched.body
    return _html_text(url, html, url=fetched.url)


def _decode_body(url: str, fetched: _Fetched) -> str:
    if fetched.charset:
        try:
            return fetched.body.decode(fetched.charset, errors="replace")
        except LookupError:
            pass  # unknown charset label: fall back to UTF-8 detection
    return _decode_text(url, fetched.body)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class _Hop:
    """One URL of a fetch (the start or a redirect) and the addresses its host resolved to."""

    url: str
    target: httpx.URL
    addresses: tuple[IPAddress, ...]


class _Watchdog:
    """One deadline for a whole fetch: every hop, its DNS lookup, headers and body.

    httpx's timeouts apply to each socket operation, so a server that sends a header line every few seconds
    never trips them. At the deadline the watchdog shuts down the connection's socket, which wakes the read
    that is blocked on it; the fetch then reports a timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._watch(None)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: watch each new connection's socket."""
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            # A duplicate: wrapping for TLS detaches the original socket object, not the kernel socket.
            self._watch(sock.dup() if isinstance(sock, socket.socket) else None)

    def _watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            old, self._socket = self._socket, sock
            if self.fired and sock is not None:
                _shut(sock)
        if old is not None:
            old.close()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


def _fetch(url: str, settings: IngestSettings) -> _Fetched:
    """GET with redirects followed by hand, so every hop's address is checked before connecting."""
    current = url
    with _Watchdog(settings.url_timeout_s) as watchdog:
        start: _Hop | None = None
        for _ in range(settings.url_max_redirects + 1):
            hop = _resolve_hop(url, current, settings, watchdog)
            _check_hop(url, hop, settings.allow_private, start)
            start = start or hop
            response_or_next = _fetch_hop(url, hop, settings, watchdog)
            if isinstance(response_or_next, _Fetched):
                return response_or_next
            current = response_or_next
    hint = (
        "open the URL in a browser and ingest the final address, or raise NCOMPARE_INGEST__URL_MAX_REDIRECTS"
    )
    message = f"too many redirects (more than {settings.url_max_redirects}); last: {current}"
    raise IngestError(url, message, hint=hint)


def _fetch_hop(origin: str, hop: _Hop, settings: IngestSettings, watchdog: _Watchdog) -> _Fetched | str:
    """Fetch one hop: the response, or the next URL when the server redirects."""
    target = hop.target
    # Connect to the address that was checked, not a second DNS answer; TLS still verifies the host name.
    pinned = target.copy_with(host=str(hop.addresses[0]))
    headers = {"Host": target.netloc.decode("ascii"), "User-Agent": USER_AGENT, "Accept": _ACCEPT}
    extensions: dict[str, Any] = {"trace": watchdog.trace}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    timeout = _hop_timeout(origin, settings, watchdog)
    try:
        with (
            httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client,
            client.stream("GET", pinned, headers=headers, extensions=extensions) as response,
        ):
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                return urljoin(hop.url, location)
            _check_response(origin, response, settings)
            body = _read_capped(origin, response, settings, watchdog)
    except httpx.HTTPError as exc:
        raise _fetch_error(origin, exc, settings, watchdog) from exc
    media_type, charset = _content_type(response)
    return _Fetched(url=hop.url, media_type=media_type, charset=charset, body=body)


def _hop_timeout(origin: str, settings: IngestSettings, watchdog: _Watchdog) -> httpx.Timeout:
    """No socket operation of a hop may wait past the fetch's deadline."""
    left = watchdog.left()
    if left <= 0:
        raise _timeout(origin, settings)
    return httpx.Timeout(left)


def _fetch_error(
    origin: str, exc: httpx.HTTPError, settings: IngestSettings, watchdog: _Watchdog
) -> IngestError:
    if isinstance(exc, httpx.TimeoutException) or watchdog.fired:
        return _timeout(origin, settings)  # a closed connection after the deadline is the watchdog's doing
    hint = "check the address and that the site is up; or save the page and ingest the file"
    return IngestError(origin, f"could not fetch: {exc or type(exc).__name__}", hint=hint)


_ACCEPT = "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5"


def _parse_url(origin: str, url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise IngestError(origin, f"not a valid URL: {url} ({exc})", hint="check the address") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise IngestError(
            origin, f"not an http(s) URL: {url}", hint="only http:// and https:// pages can be fetched"
        )
    return target


def _resolve_hop(origin: str, url: str, settings: IngestSettings, watchdog: _Watchdog) -> _Hop:
    target = _parse_url(origin, url)
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        infos = _getaddrinfo_until(host, port, watchdog.left())
    except TimeoutError as exc:
        raise _timeout(origin, settings) from exc
    except (OSError, UnicodeError) as exc:
        hint = "check the host name and your network connection"
        raise IngestError(origin, f"cannot resolve host {host!r}: {exc}", hint=hint) from exc
    addresses = tuple(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
    if not addresses:
        raise IngestError(origin, f"cannot resolve host {host!r}", hint="check the host name")
    return _Hop(url, target, addresses)


def _getaddrinfo_until(host: str, port: int, seconds: float) -> list[Any]:
    """getaddrinfo has no timeout: it runs in a daemon thread, and we stop waiting after `seconds`."""
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the caller's thread
            answer.append(exc)

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(max(seconds, 0))
    if not answer:
        raise TimeoutError(f"no DNS answer for {host} within {seconds:.1f} s")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return list(answer[0])


def _check_hop(origin: str, hop: _Hop, allow_private: bool, start: _Hop | None) -> None:
    """Refuse private/loopback/link-local/reserved/multicast addresses unless allowed.

    Allowing a private start URL does not allow every private hop: a redirect may reach a non-public address
    only on the start's own (non-public) host, or loopback from loopback; never a link-local one, where cloud
    metadata services answer. Otherwise any page on an allowed intranet host could steer us anywhere inside.
    """
    for address in hop.addresses:
        if _is_public(address):
            continue
        if not allow_private:
            hint = "internal addresses are refused for safety; to allow: NCOMPARE_INGEST__ALLOW_PRIVATE=true"
            raise _refused(origin, hop, start, f"resolves to non-public address {address}", hint)
        if start is None:
            continue
        if _is_link_local(address):
            reason = f"resolves to link-local address {address}, where cloud metadata services answer"
            hint = "redirects there are always refused; if you trust the page, save it and ingest the file"
            raise _refused(origin, hop, start, reason, hint)
        if not _private_hop_allowed(hop, start, address):
            reason = (
                f"resolves to private address {address}; --allow-private allows only the start URL's own "
                f"host ({start.target.host}) on redirects"
            )
            raise _refused(origin, hop, start, reason, f"if you trust it, give {hop.url} itself as the URL")


def _refused(origin: str, hop: _Hop, start: _Hop | None, reason: str, hint: str) -> IngestError:
    where = "refused" if start is None else f"refused redirect to {hop.url}"
    return IngestError(origin, f"{where}: {hop.target.host} {reason}", hint=hint)


def _private_hop_allowed(hop: _Hop, start: _Hop, address: IPAddress) -> bool:
    """A redirect stays on the private ground the user chose: the start's host or addresses, or loopback."""
    start_addresses = {_unmapped(item) for item in start.addresses}
    if all(_is_public(item) for item in start_addresses):
        return False  # the start was public: it allowed nothing private (DNS rebinding)
    address = _unmapped(address)
    same_host = hop.target.host.lower() == start.target.host.lower() or address in start_addresses
    return same_host or (address.is_loopback and all(item.is_loopback for item in start_addresses))


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_link_local(address: IPAddress) -> bool:
    return _unmapped(address).is_link_local


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _content_type(response: httpx.Response) -> tuple[str, str | None]:
    raw = response.headers.get("content-type", "")
    media_type = raw.split(";", 1)[0].strip().lower()
    match = re.search(r"charset=[\"']?([\w.:-]+)", raw, re.IGNORECASE)
    return media_type, (match.group(1) if match else None)


def _check_response(origin: str, response: httpx.Response, settings: IngestSettings) -> None:
    status = response.status_code
    if status >= 400 or status < 200 or status in REDIRECT_STATUSES:
        raise IngestError(
            origin, f"HTTP {status} {response.reason_phrase}".rstrip(), hint=_status_hint(status)
        )
    media_type, _ = _content_type(response)
    if media_type not in HTML_TYPES + TEXT_TYPES:
        shown = media_type or "none given"
        hint = (
            "download it and ingest the file (e.g. a .pdf) instead" if media_type else "ingest a saved copy"
        )
        message = f"not a web page: content type {shown} (accepted: {', '.join(HTML_TYPES + TEXT_TYPES)})"
        raise IngestError(origin, message, hint=hint)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.url_max_mb * _MB:
        raise _too_big(origin, settings)


def _status_hint(status: int) -> str:
    if status in (404, 410):
        return "check the URL: the page may have moved or been removed"
    if status in (401, 402, 403):
        return "the site refuses automated access or needs a login: save the page and ingest the file"
    if status == 429 or status >= 500:
        return "the server is busy or failing: try again later"
    return "open the URL in a browser to see what the server says"


def _read_capped(
    origin: str, response: httpx.Response, settings: IngestSettings, watchdog: _Watchdog
) -> bytes:
    """Read the body, stopping as soon as it exceeds url_max_mb or the overall timeout passes."""
    cap = settings.url_max_mb * _MB
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > cap:
            raise _too_big(origin, settings)
        if watchdog.fired:
            raise _timeout(origin, settings)
        chunks.append(chunk)
    if watchdog.fired:  # a body without Content-Length just ends when the watchdog closes the connection
        raise _timeout(origin, settings)
    return b"".join(chunks)


def _too_big(origin: str, settings: IngestSettings) -> IngestError:
    hint = "save the page and ingest the file, or raise NCOMPARE_INGEST__URL_MAX_MB"
    return IngestError(origin, f"response larger than {settings.url_max_mb:g} MB; stopped reading", hint=hint)


def _timeout(origin: str, settings: IngestSettings) -> IngestError:
    hint = "try again later, or raise NCOMPARE_INGEST__URL_TIMEOUT_S"
    return IngestError(origin, f"timed out after {settings.url_timeout_s:g} s", hint=hint)
