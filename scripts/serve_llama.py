"""Serve SmolLM2-135M-Instruct with llama-cpp-python's OpenAI-compatible server on loopback (stdlib only).

    bash scripts/make_llama_env.sh                 # once: builds build/llama-env (cached)
    python scripts/serve_llama.py --print-url      # prints http://127.0.0.1:PORT/v1; Ctrl-C stops it

From Python (tests/integration, scripts/record_server_replies.py):

    with served() as base_url:                     # "http://127.0.0.1:PORT/v1"
        ...

The server runs `build/llama-env/bin/python -m llama_cpp.server` on a free port with the model alias `smollm2`
(any model name is served by the one model), both cores, and logits kept for the last token only (the default,
logits for every token, costs a 8192 x 49152 float array and the matmuls behind it). Its log goes to
build/llama-server/server-PORT.log; if it does not answer GET /v1/models in time, the error shows the log's tail.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV_DIR = REPO / "build" / "llama-env"
LOG_DIR = REPO / "build" / "llama-server"
MODEL_ALIAS = "smollm2"
N_CTX = 8192  # SmolLM2's training context (n_ctx_train in the GGUF)


class ServerError(RuntimeError):
    pass


def model_path(env_dir: Path = ENV_DIR) -> Path:
    """The GGUF file recorded by scripts/make_llama_env.sh."""
    if not (env_dir / ".ready").exists():
        raise ServerError(f"{env_dir} is not built: run `bash scripts/make_llama_env.sh` first")
    return Path((env_dir / "model-path").read_text().strip())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(env_dir: Path, port: int, n_ctx: int) -> list[str]:
    threads = str(os.cpu_count() or 1)
    return [
        *(str(env_dir / "bin" / "python"), "-m", "llama_cpp.server"),
        *("--model", str(model_path(env_dir)), "--model_alias", MODEL_ALIAS),
        *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)),
        *("--n_threads", threads, "--n_threads_batch", threads, "--logits_all", "false"),
    ]


def log_tail(log_path: Path, lines: int = 30) -> str:
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not answers(base_url):
        if process.poll() is not None:
            raise ServerError(f"llama_cpp.server exited with {process.returncode}:\n{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise ServerError(f"llama_cpp.server did not answer in {timeout_s:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.25)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down cleanly on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def served(n_ctx: int = N_CTX, timeout_s: float = 120.0, env_dir: Path = ENV_DIR) -> Iterator[str]:
    """Start the server, yield its base URL (http://127.0.0.1:PORT/v1) once it answers, stop it on exit."""
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(env_dir, port, n_ctx),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # uvicorn's access log would sit in a buffer
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(base_url, process, log_path, timeout_s)
        yield base_url
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--print-url", action="store_true", help="print the base URL once the server answers")
    parser.add_argument("--n-ctx", type=int, default=N_CTX, help=f"context size (default {N_CTX})")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the server to answer"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` stops the server too
    try:
        with served(args.n_ctx, args.timeout) as base_url:
            print(base_url if args.print_url else f"serving {MODEL_ALIAS} at {base_url} (Ctrl-C stops it)")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
