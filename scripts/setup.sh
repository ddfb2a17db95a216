#!/usr/bin/env bash
# Set up a development/host environment in ./.venv: edgeinfer (editable) with the host, runtime,
# mqtt, dev and verify extras (verify: TensorRT-RTX, NVIDIA's ONNX parser for the nvparse test tier),
# plus CPU-usable torch for Ultralytics .pt export.
# Usage: bash scripts/setup.sh            (idempotent; re-run after pulling)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision pinned to the releases this project is tested with (CPU use on hosts).
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] installing torch 2.14.1 + torchvision 0.29.1"
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
fi
echo "[setup] installing edgeinfer[host,export,runtime,mqtt,dev,verify]"
.venv/bin/python -m pip install -q -e ".[host,export,runtime,mqtt,dev,verify]"
# PyGObject (GStreamer appsink sources, RTSP server output, H.264 files) builds from source against
# the system's gobject-introspection; 3.51+ needs girepository-2.0, newer than Debian 12 and JetPack have.
if pkg-config --exists gobject-introspection-1.0 cairo 2>/dev/null; then
  if ! .venv/bin/python -c "import gi" 2>/dev/null; then
    echo "[setup] installing PyGObject (GStreamer through PyGObject)"
    .venv/bin/python -m pip install -q "PyGObject<3.51"
  fi
else
  echo "[setup] skipping PyGObject: needs libgirepository1.0-dev and libcairo2-dev (see .ci/run)"
fi
echo "[setup] done: $(.venv/bin/edgeinfer --version)"
