#!/usr/bin/env bash
# Pipeline benchmarks on the CUDA device machine (16-core host; ONNX Runtime CPU provider there),
# recorded in docs/benchmarks/pipeline.md. Run from the repo root on that machine.
# Needs, carried in git-ignored folders:
#   .carry/uwhl/  ultralytics + ultralytics-thop wheels (pure Python; torch/opencv/etc. are on the host)
#   .carry/bench/ yolo11n-320.onnx and yolo11n-640.onnx exported from yolo11n.yaml (random weights)
set -uo pipefail
OUT=${OUT:-/tmp/device-bench-out}
mkdir -p "$OUT" /tmp/site /tmp/ycfg/Ultralytics
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/uwhl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/ycfg
cp "$(python3 -c 'import matplotlib, os; print(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data/fonts/ttf/DejaVuSans.ttf"))')" \
   /tmp/ycfg/Ultralytics/Arial.ttf
echo "host: $(nproc) cores, $(python3 --version), $(nvidia-smi -L | head -1)"
python3 - <<'PY'
from edgeinfer.demo import make_video
make_video("/tmp/v640.mp4", frames=150, size=(640, 480), seed=0)
make_video("/tmp/v1080.mp4", frames=100, size=(1920, 1080), seed=1)
PY
B="python3 scripts/bench_pipeline.py"
$B efficiency --model .carry/bench/yolo11n-320.onnx --video /tmp/v640.mp4 --frames 150 --repeats 3 --json "$OUT/eff320.json" 2>&1 | tail -12
$B efficiency --model .carry/bench/yolo11n-640.onnx --video /tmp/v1080.mp4 --frames 100 --repeats 3 --json "$OUT/eff640.json" 2>&1 | tail -12
$B ultralytics --model .carry/bench/yolo11n-320.onnx --video /tmp/v640.mp4 --imgsz 320 --repeats 3 --json "$OUT/u320.json" 2>&1 | tail -12
$B ultralytics --model .carry/bench/yolo11n-640.onnx --video /tmp/v1080.mp4 --imgsz 640 --repeats 3 --json "$OUT/u640.json" 2>&1 | tail -12
