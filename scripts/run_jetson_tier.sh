#!/usr/bin/env bash
# Jetson tier: build real TensorRT engines (GPU FP16, GPU INT8, DLA0 INT8 + GPU fallback) for the
# demo model on THIS Jetson, compare them with ONNX Runtime, check DLA placement, write a report.
# It also runs each bundle's trtexec recipe exactly as stored (inside the bundle directory),
# records that engine with `edgeinfer build --import`, builds the same engine with `edgeinfer build`,
# compares both engines with ONNX Runtime, prints every layer's precision and device (engine
# inspector) and checks the INT8 share (tests/jetson/test_jetson_recipes.py), and runs the
# runtime's jetson tests (TensorRT backend incl. DLA + CUDA graph requests).
# It has not run anywhere yet: it needs a real Jetson (no GPU machine or CI host can stand in).
# Run on the device from the repository root:  bash scripts/run_jetson_tier.sh [REPORT_DIR]
# Optional: EDGEINFER_JETSON_BUNDLE_FP16 / EDGEINFER_JETSON_BUNDLE_INT8 = bundles packaged on a host.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-jetson-tier-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python

if [ ! -f /etc/nv_tegra_release ]; then
  echo "error: /etc/nv_tegra_release not found: this is not a Jetson (the tier only runs on one)" >&2
  exit 2
fi
if ! "$PY" -c "import tensorrt" 2>/dev/null; then
  echo "error: TensorRT is not importable by $PY. Hint: sudo apt install python3-libnvinfer (JetPack); a venv needs --system-site-packages" >&2
  exit 2
fi

TRTEXEC=/usr/src/tensorrt/bin/trtexec
if [ ! -x "$TRTEXEC" ]; then
  echo "error: $TRTEXEC not found: the recipes' trtexec command needs JetPack's TensorRT samples (sudo apt install tensorrt)" >&2
  exit 2
fi

{
  echo "# edgeinfer Jetson tier report"
  echo "date_utc: $(date -u +%FT%TZ)"
  echo "l4t: $(head -n1 /etc/nv_tegra_release)"
  echo "model: $(tr -d '\0' < /proc/device-tree/model 2>/dev/null || echo unknown)"
  echo "tensorrt: $("$PY" -c 'import tensorrt; print(tensorrt.__version__)')"
  echo "trtexec: $("$TRTEXEC" --help 2>&1 | grep -m1 -o 'TensorRT.v[0-9]*' || echo unknown)"
  echo "nvpmodel: $(nvpmodel -q 2>/dev/null | head -n1 || echo unknown)"
  echo "python: $("$PY" --version 2>&1)"
  echo "edgeinfer_commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$OUT/environment.txt"

export EDGEINFER_JETSON_REPORT="$PWD/$OUT/cases.jsonl" EDGEINFER_JETSON_OUT="$PWD/$OUT"
rm -f "$EDGEINFER_JETSON_REPORT" "$OUT"/layers-*.txt
set +e
# -rA prints each passed case's captured output too: the per-layer precision/device tables
"$PY" -m pytest tests/jetson tests/runtime/test_runtime_jetson.py -m jetson -v -rA --junitxml="$OUT/junit.xml" 2>&1 \
  | tee "$OUT/pytest.log"
STATUS=${PIPESTATUS[0]}
set -e
cat "$OUT/environment.txt"
[ -f "$EDGEINFER_JETSON_REPORT" ] && cat "$EDGEINFER_JETSON_REPORT"
if [ -f "$EDGEINFER_JETSON_REPORT" ]; then
  # one line per recipe case: both engines against ONNX Runtime, and their INT8 share
  "$PY" - "$EDGEINFER_JETSON_REPORT" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    case = json.loads(line)
    if "int8_share" not in case:
        continue
    m, s = case["metrics"], case["int8_share"]
    print(f"{case['case']}: cosine trtexec {m['trtexec']['cosine']:.5f} / edgeinfer build "
          f"{m['edgeinfer_build']['cosine']:.5f}; INT8 share trtexec {s['trtexec']['share']:.2f} / "
          f"edgeinfer build {s['edgeinfer_build']['share']:.2f}")
PYEOF
fi
echo "report: $OUT (pytest exit $STATUS)"
exit "$STATUS"
