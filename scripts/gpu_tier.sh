#!/usr/bin/env bash
# gpu tier + GPU benchmarks, run on the CUDA device machine from the repo root (see docs/benchmarks/gpu-tier.md).
#
# Needs, carried in git-ignored folders:
#   $WHL (default .whl/) pycuda sdist (pycuda-*.tar.gz) or a pycuda wheel built by an earlier run, plus the pure
#           wheels pytools, platformdirs, mako, siphash24 (pycuda's build/run dependencies on PyPI)
#   .carry/ a random-weight YOLO11n ONNX (yolo11n.yaml, 320) for the NMS stress run of the steady-state benchmark
# Writes logs under $OUT (default /tmp/gpu-tier-out), including the pycuda wheel it built.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-tier-out}
SITE=/tmp/site
WHL=${WHL:-.whl}
MODEL=${MODEL:-edgeinfer/_data/demo/shapes-yolo11n-320.onnx}   # the committed demo detector
STRESS_MODEL=${STRESS_MODEL:-.carry/yolo11n-random-320.onnx}  # random weights, 80 classes
mkdir -p "$OUT" "$SITE"
export PYTHONUNBUFFERED=1 CUDA_ROOT=/usr/local/cuda PATH=/usr/local/cuda/bin:$PATH
python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHL"/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD"
if ! python3 -c "import pycuda.driver" 2>/dev/null; then
  t0=$(date +%s)
  rm -rf /tmp/pycuda-src && mkdir -p /tmp/pycuda-src && tar xzf "$WHL"/pycuda-*.tar.gz -C /tmp/pycuda-src
  (cd /tmp/pycuda-src/pycuda-* && python3 -m pip wheel -q --no-deps --no-build-isolation -w "$OUT" .) > "$OUT/pycuda-build.log" 2>&1
  python3 -m pip install -q --no-index --no-deps --target "$SITE" "$OUT"/pycuda-*.whl || { tail -30 "$OUT/pycuda-build.log"; }
  echo "pycuda built from sdist in $(( $(date +%s) - t0 )) s"
fi
nvidia-smi -L
python3 -c "import sys, numpy, cv2, onnxruntime, cuda.bindings, pycuda; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cv2', cv2.__version__, 'ort', onnxruntime.__version__, 'cuda-bindings', cuda.bindings.__version__, 'pycuda', pycuda.VERSION_TEXT)"
echo "== pytest tests/runtime (gpu tier included)"
python3 -m pytest tests/runtime -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -25
echo "== (a) transfers"
python3 scripts/bench_runtime_transfer.py 2>&1 | tee "$OUT/bench_transfer.log"
echo "== (b) GPU pre-processing"
for impl in cuda-python pycuda; do python3 scripts/bench_runtime_gpu_preprocess.py --impl $impl 2>&1 | tee -a "$OUT/bench_gpu_pre.log"; done
echo "== (d) steady state, ORT CPU"
python3 scripts/bench_runtime_steady_state.py "$MODEL" --frames 2000 2>&1 | tee "$OUT/bench_steady.log"
# random weights score ~1e-4: a tiny threshold puts ~100 candidates per frame through NMS (stress case)
[ -f "$STRESS_MODEL" ] && python3 scripts/bench_runtime_steady_state.py "$STRESS_MODEL" --frames 2000 --conf 5e-5 2>&1 | tee -a "$OUT/bench_steady.log"
