"""Bounded reads: a URL fetch ends at one deadline, only regular files are read (and never past the size
limit), and --allow-private allows the start URL's host, not every private address a redirect names."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from compare.errors import IngestError
from compare.ingest import readers
from compare.ingest.readers import RawDocument, ReadOptions, iter_raw
from compare.settings import IngestSettings
from tests.conftest import loopback_http

ARTICLE = "The ministry said on Tuesday that the new package would be delivered within weeks. " * 5
PAGE = f"<html><head><title>Package</title></head><body><article><p>{ARTICLE}</p></article></body></html>"
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")


def read(*inputs: str | Path, **options: Any) -> tuple[list[RawDocument], list[IngestError]]:
    items = list(iter_raw([str(item) for item in inputs], ReadOptions(**options)))
    docs = [item for item in items if isinstance(item, RawDocument)]
    errors = [item for item in items if isinstance(item, IngestError)]
    assert len(docs) + len(errors) == len(items)
    return docs, errors


def only_error(errors: list[IngestError]) -> IngestError:
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


# --- URLs: one deadline for the whole fetch ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        route, _, query = self.path.partition("?")
        try:
            if route == "/article":
                self._page()
            elif route == "/drip-headers":
                self._drip_headers()
            elif route == "/drip-body":
                self._drip_body()
            elif route.startswith("/slow-hops/"):
                time.sleep(0.8)  # each hop well inside the timeout; together past it
                self._redirect(f"/slow-hops/{int(route.rsplit('/', 1)[1]) + 1}")
            elif route == "/to":
                self._redirect(query.removeprefix("u="))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _page(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip_headers(self) -> None:
        # Every line arrives well inside httpx's per-read timeout; the headers never end.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
        for number in range(30):
            time.sleep(1)
            self.wfile.write(f"X-Drip-{number}: 1\r\n".encode())
            self.wfile.flush()

    def _drip_body(self) -> None:
        # No Content-Length: a body cut short by the deadline must not pass for the whole page.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<p>")
        for _ in range(30):
            time.sleep(0.5)
            self.wfile.write(b"word ")
            self.wfile.flush()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with loopback_http(_Handler) as url:
        yield url


LOCAL = IngestSettings(allow_private=True, url_timeout_s=2)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("route", ["/drip-headers", "/drip-body", "/slow-hops/0"])
def test_fetch_ends_at_one_deadline(server: str, route: str) -> None:
    started = time.monotonic()

    docs, errors = read(f"{server}{route}", settings=LOCAL)

    elapsed = time.monotonic() - started
    assert docs == []
    error = only_error(errors)
    assert error.origin == f"{server}{route}" and "timed out after 2 s" in error.reason
    assert "URL_TIMEOUT_S" in (error.hint or "")
    assert 1.5 < elapsed < 3.5, elapsed


@pytest.mark.timeout(30)
def test_dns_lookup_counts_against_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging_dns(*args: Any, **kwargs: Any) -> Any:
        release.wait(20)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(readers.socket, "getaddrinfo", hanging_dns)
    started = time.monotonic()
    try:
        _, errors = read("http://news.example/article", settings=IngestSettings(url_timeout_s=1))
    finally:
        release.set()

    assert "timed out after 1 s" in only_error(errors).reason
    assert time.monotonic() - started < 2.5


def test_a_fetch_within_the_deadline_leaves_no_watchdog_running(server: str) -> None:
    before = threading.active_count()

    [doc], errors = read(f"{server}/article", settings=LOCAL)

    assert errors == [] and "delivered within weeks" in doc.text
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


# --- URLs: a private start does not allow every private hop -------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
    ],
)
def test_redirect_to_link_local_is_always_refused(server: str, target: str) -> None:
    # conftest turns any non-loopback connect() into NetworkBlocked: an IngestError here means no connection.
    url = f"{server}/to?u={target}"

    docs, errors = read(url, settings=LOCAL)

    error = only_error(errors)
    assert docs == [] and error.origin == url
    assert f"refused redirect to {target}" in error.reason and "link-local address" in error.reason
    assert "cloud metadata" in error.reason and error.hint


@pytest.mark.parametrize("target", ["http://10.0.0.1/admin", "http://192.168.1.1/", "http://[fc00::1]/"])
def test_redirect_to_another_private_host_is_refused(server: str, target: str) -> None:
    url = f"{server}/to?u={target}"

    docs, errors = read(url, settings=LOCAL)

    error = only_error(errors)
    assert docs == [] and error.origin == url
    assert f"refused redirect to {target}" in error.reason and "private address" in error.reason
    assert "start URL's own host (127.0.0.1)" in error.reason
    assert target in (error.hint or "")


def test_redirect_on_the_start_host_or_loopback_is_followed(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    for target in (f"{server}/article", f"http://localhost:{port}/article"):
        [doc], errors = read(f"{server}/to?u={target}", settings=LOCAL)
        assert errors == [] and doc.fields["url"] == target


def test_a_public_start_allows_no_private_redirect(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The start host resolves to a "public" address; its redirect to a private one (DNS rebinding) is refused
    # even with allow_private, which allows private start URLs only.
    port = server.rsplit(":", 1)[1]
    real = readers.socket.getaddrinfo

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "news.test" else host, *args, **kwargs)

    monkeypatch.setattr(readers.socket, "getaddrinfo", fake_dns)
    monkeypatch.setattr(readers, "_is_public", lambda address: str(address) == "127.0.0.1")

    _, errors = read(f"http://news.test:{port}/to?u=http://127.0.0.2:{port}/article", settings=LOCAL)

    assert "refused redirect to http://127.0.0.2" in only_error(errors).reason


# --- files: regular files only, never past the size limit ---------------------------------------------


def _folder(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text(ARTICLE)
    (root / "z.txt").write_text(ARTICLE)
    return root


@needs_fifo
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["pipe.txt", "pipe.jsonl", "pipe"])
def test_fifo_in_a_folder_is_named_and_the_rest_read(tmp_path: Path, name: str) -> None:
    folder = _folder(tmp_path / "corpus")
    os.mkfifo(folder / name)

    docs, errors = read(folder)

    error = only_error(errors)
    assert error.origin == str(folder / name) and "not a regular file (a FIFO" in error.reason
    assert "copy the content to a regular file" in (error.hint or "")
    assert sorted(Path(doc.origin).name for doc in docs) == ["a.txt", "z.txt"]


@needs_fifo
@pytest.mark.timeout(30)
def test_fifo_swapped_in_after_the_check_does_not_block(tmp_path: Path) -> None:
    # _read_bytes opens without blocking and checks the opened file itself, not only the earlier stat.
    fifo = tmp_path / "late.txt"
    os.mkfifo(fifo)

    with pytest.raises(IngestError, match="not a regular file"):
        readers._read_bytes(fifo, IngestSettings())


@pytest.mark.timeout(30)
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_is_refused_not_read(tmp_path: Path) -> None:
    docs, errors = read("/dev/zero", tmp_path / "missing-is-fine.txt", format="txt")

    error = errors[0]
    assert error.origin == "/dev/zero" and "not a regular file (a character device)" in error.reason
    assert docs == []


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs procfs")
def test_size_limit_holds_while_reading_when_stat_says_zero() -> None:
    # procfs files are regular with st_size 0: only the read itself can enforce the limit.
    assert Path("/proc/self/maps").stat().st_size == 0

    _, errors = read("/proc/self/maps", format="txt", settings=IngestSettings(max_file_mb=0.001))

    error = only_error(errors)
    assert "file too large (more than 0.001 MB read" in error.reason
    assert "MAX_FILE_MB" in (error.hint or "")


def test_size_limit_from_stat_still_names_the_size(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(ARTICLE * 50)

    _, errors = read(big, settings=IngestSettings(max_file_mb=0.01))

    assert "file too large (0.0 MB, limit 0.01 MB)" in only_error(errors).reason


def test_symlink_loop_is_named_not_a_permissions_problem(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "corpus")
    (folder / "loop.txt").symlink_to("loop.txt")
    (folder / "b1.txt").symlink_to("b2.txt")
    (folder / "b2.txt").symlink_to("b1.txt")

    cases = {
        "folder": ([folder], ["b1.txt", "b2.txt", "loop.txt"]),
        "named": ([folder / "loop.txt"], ["loop.txt"]),
    }
    for inputs, names in cases.values():
        _, errors = read(*inputs)
        assert [Path(error.origin).name for error in errors] == names
        assert all("symbolic link loop" in error.reason for error in errors), [str(e) for e in errors]
        assert all("permission" not in (error.hint or "") for error in errors)
    assert sorted(Path(doc.origin).name for doc in read(folder)[0]) == ["a.txt", "z.txt"]


def test_broken_symlink_names_its_target(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "moved-away.txt")

    _, errors = read(link)

    error = only_error(errors)
    assert "broken symbolic link" in error.reason and "moved-away.txt" in error.reason
