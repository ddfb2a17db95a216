#!/usr/bin/env python3
"""Write the synthetic shapes dataset (YOLO layout) and/or the demo video with ground truth.

Usage:
    .venv/bin/python scripts/make_synthetic_data.py dataset /tmp/shapes --n-train 200 --seed 0
    .venv/bin/python scripts/make_synthetic_data.py video /tmp/demo.mp4 --frames 150 --size 640x480
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeinfer.demo import make_dataset, make_video, truth_path  # noqa: E402
from edgeinfer.errors import EdgeInferError  # noqa: E402


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from exc
    return w, h


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("dataset", help="YOLO dataset: images/, labels/, data.yaml")
    d.add_argument("out_dir")
    d.add_argument("--n-train", type=int, default=200)
    d.add_argument("--n-val", type=int, default=50)
    d.add_argument("--n-test", type=int, default=50)
    d.add_argument("--imgsz", type=int, default=320)
    d.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("video", help="mp4v video of moving shapes + <name>.truth.json")
    v.add_argument("out_path")
    v.add_argument("--frames", type=int, default=150)
    v.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT")
    v.add_argument("--fps", type=float, default=30.0)
    v.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        if args.what == "dataset":
            root = make_dataset(args.out_dir, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                                imgsz=args.imgsz, seed=args.seed)
            print(root / "data.yaml")
        else:
            path = make_video(args.out_path, frames=args.frames, size=args.size, fps=args.fps, seed=args.seed)
            print(path)
            print(truth_path(path))
    except EdgeInferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
