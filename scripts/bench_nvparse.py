"""How long NVIDIA's parser check takes per ONNX: parse and ahead-of-time build, weakly and strongly typed.

Usage:  python scripts/bench_nvparse.py [ONNX ...] [--repeat 3]     (default: the committed demo model)

Prints the median and spread of parse and build seconds per file and typing mode, measured side by side in one
run with the load average before and after (the figure depends on the machine and its load; nothing here is a
pass/fail target). Needs TensorRT or TensorRT-RTX (pip install 'edgeinfer[verify]').
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402


def main() -> None:
    from edgeinfer.demo import demo_model_path
    from edgeinfer.engine.parser_oracle import load_oracle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", nargs="*", help="ONNX files (default: the demo model)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    files = [Path(p) for p in args.onnx] or [Path(demo_model_path("onnx"))]
    print(machine_line())
    print(f"load average before: {os.getloadavg()}")
    oracle = load_oracle()
    print(f"parser: {oracle.name} {oracle.version} (ONNX parser {oracle.onnx_parser_version})")
    for path in files:
        for strong in ((False, True) if oracle.can_strongly_type() else (False,)):
            runs = [oracle.check(path, strongly_typed=strong, build=True) for _ in range(args.repeat)]
            if not all(r.parsed and r.built for r in runs):
                print(f"{path.name} {'strong' if strong else 'weak'}: REJECTED: {runs[0].errors[0].line()}")
                continue
            parse = [r.parse_s for r in runs]
            build = [r.build_s for r in runs]
            print(f"{path.name:<32} {'strong' if strong else 'weak':<6} {runs[0].num_layers:5d} layers  "
                  f"parse median {statistics.median(parse):.2f} s (min {min(parse):.2f}, max {max(parse):.2f})  "
                  f"build median {statistics.median(build):.2f} s (min {min(build):.2f}, max {max(build):.2f})  "
                  f"engine {runs[0].engine_bytes / 1e6:.1f} MB")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
