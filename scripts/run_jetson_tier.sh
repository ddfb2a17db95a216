#!/usr/bin/env bash
# Jetson tier: build real TensorRT engines (GPU FP16, GPU INT8, DLA0 INT8 + GPU fallback) for the
# demo model on THIS Jetson, compare them with ONNX Runtime, check DLA placement, write a report.
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

{
  echo "# edgeinfer Jetson tier report"
  echo "date_utc: $(date -u +%FT%TZ)"
  echo "l4t: $(head -n1 /etc/nv_tegra_release)"
  echo "model: $(tr -d '\0' < /proc/device-tree/model 2>/dev/null || echo unknown)"
  echo "tensorrt: $("$PY" -c 'import tensorrt; print(tensorrt.__version__)')"
  echo "nvpmodel: $(nvpmodel -q 2>/dev/null | head -n1 || echo unknown)"
  echo "python: $("$PY" --version 2>&1)"
  echo "edgeinfer_commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$OUT/environment.txt"

export EDGEINFER_JETSON_REPORT="$PWD/$OUT/cases.jsonl"
rm -f "$EDGEINFER_JETSON_REPORT"
set +e
"$PY" -m pytest tests/jetson -m jetson -v -rA --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/pytest.log"
STATUS=${PIPESTATUS[0]}
set -e
cat "$OUT/environment.txt"
[ -f "$EDGEINFER_JETSON_REPORT" ] && cat "$EDGEINFER_JETSON_REPORT"
echo "report: $OUT (pytest exit $STATUS)"
exit "$STATUS"
