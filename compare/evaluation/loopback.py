"""A JSON-over-HTTP server on 127.0.0.1 in a daemon thread, for OpenAI-compatible stand-ins.

Used by the replay server (recorded LLM responses for `ncompare eval`) and by the tests' scripted fake server:
both answer POST /v1/chat/completions and differ only in how they pick the answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: (status, JSON payload, extra headers) for one request: what a `respond` function returns. A `bytes`
#: payload is sent as it is (a recorded reply; its content-type among the headers, else text/plain).
Response = tuple[int, Any, dict[str, str]]
#: respond(path, headers, raw body) -> Response, or None to send nothing (e.g. the server is closing).
Respond = Callable[[str, dict[str, str], bytes], "Response | None"]


class LoopbackJSONServer:
    """`with LoopbackJSONServer(respond) as server:` then point a client at `server.base_url` (.../v1)."""

    def __init__(self, respond: Respond) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(respond))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackJSONServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(respond: Respond) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and eval runs print enough
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            response = respond(self.path, dict(self.headers), raw)
            if response is not None:
                self._send(*response)

        def _send(self, code: int, payload: Any, headers: dict[str, str]) -> None:
            raw = isinstance(payload, bytes)
            data = payload if raw else json.dumps(payload).encode()
            headers = {"content-type": "text/plain" if raw else "application/json", **headers}
            try:
                self.send_response(code)
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                pass

    return Handler
