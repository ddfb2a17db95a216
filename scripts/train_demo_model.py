#!/usr/bin/env python3
"""Train the demo detector (YOLO11n, 3 shape classes, 320 px) on synthetic data, on the CPU, offline.

Steps: generate the synthetic dataset (edgeinfer.demo.make_dataset) outside the repo; train YOLO11n
from ``yolo11n.yaml`` (random init, nothing downloaded); validate best.pt on the held-out ``test``
split (never seen in training or model selection, which uses ``val``); export ONNX (320, opset 17,
static batch 1, simplified, Ultralytics metadata kept); check the ONNX on the same split; and only
when held-out mAP50 meets the bar, write edgeinfer/_data/demo/{shapes-yolo11n.pt,
shapes-yolo11n-320.onnx, MODEL_CARD.md}.

Usage:
    .venv/bin/python scripts/train_demo_model.py --device 0 --workers 8      # the committed recipe, on a GPU
    nohup .venv/bin/python scripts/train_demo_model.py > /tmp/train_demo.log 2>&1 &   # same on the CPU (hours on 2 cores)
    .venv/bin/python scripts/train_demo_model.py --epochs 120 --n-train 1200  # train longer / more data
"""
from __future__ import annotations

import argparse
import atexit
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # scripts/ is sys.path[0]

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "edgeinfer" / "_data" / "demo"
PT_NAME, ONNX_NAME = "shapes-yolo11n.pt", "shapes-yolo11n-320.onnx"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="/tmp/edgeinfer-shapes", help="where the dataset is generated (not the repo)")
    p.add_argument("--work-dir", default="/tmp/edgeinfer-train", help="Ultralytics project dir for runs")
    p.add_argument("--out-dir", default=str(OUT_DIR), help="where the weights and model card go")
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--device", default="cpu", help="cpu (the default, what the committed weights used) or a CUDA index")
    p.add_argument("--init-weights", default="yolo11n.yaml",
                   help="start point: yolo11n.yaml (random init, default) or a local .pt to train longer from")
    p.add_argument("--min-map50", type=float, default=0.90, help="held-out mAP50 bar for writing the weights")
    return p.parse_args(argv)


def offline_ultralytics_env() -> Path:
    """Make Ultralytics fully offline (edgeinfer's own helper), settings kept in a temp dir.

    Must run before ``import ultralytics`` (it reads YOLO_OFFLINE at import time).
    """
    from edgeinfer.model.ultralytics_export import offline_ultralytics_env as offline_env

    cfg = Path(tempfile.mkdtemp(prefix="edgeinfer-yolo-cfg-"))
    atexit.register(shutil.rmtree, str(cfg), True)
    os.environ.update(offline_env(cfg, base={}))
    return cfg


def machine_description(device: str) -> str:
    cpu = cpu_model()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    accel = "trained on the CPU"
    if device != "cpu":
        import torch

        accel = f"trained on GPU {torch.cuda.get_device_name(int(str(device).split(',')[0]))}"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical cores "
            f"(load average at the end {load}), {accel}, Python {platform.python_version()}")


def best_epoch_from_results(csv_path: Path) -> str:
    """The epoch Ultralytics kept as best.pt: the first with the highest val mAP50-95 (its fitness)."""
    import csv

    with open(csv_path, newline="") as fh:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows:
        return "unknown (empty results.csv)"
    key = "metrics/mAP50-95(B)"
    best = max(rows, key=lambda r: (float(r[key]), -int(float(r["epoch"]))))
    return f"{int(float(best['epoch']))} (val mAP50 {float(best['metrics/mAP50(B)']):.3f}, mAP50-95 {float(best[key]):.3f})"


def box_metrics(metrics) -> dict:
    names = metrics.names
    per_class = {names[int(c)]: float(ap) for c, ap in zip(metrics.box.ap_class_index, metrics.box.ap50)}
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map),
            "precision": float(metrics.box.mp), "recall": float(metrics.box.mr), "ap50_per_class": per_class}


def write_model_card(path: Path, *, args, command: str, versions: dict, pt_metrics: dict, onnx_metrics: dict,
                     train_s: float, total_s: float, epochs_run: int, best_epoch: str, onnx_info: dict) -> None:
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in pt_metrics["ap50_per_class"].items())
    origin = ("from random initialisation (`yolo11n.yaml`)" if args.init_weights.endswith(".yaml")
              else f"further from `{args.init_weights}` (itself made by this script)")
    text = f"""# Demo model card: shapes-yolo11n

A small detector made by this project, for demos and tests only: Ultralytics YOLO11n trained
{origin} on synthetic scenes of filled shapes (nothing downloaded).
It knows nothing about real-world objects.

| | |
|---|---|
| files | `{PT_NAME}` (Ultralytics checkpoint), `{ONNX_NAME}` (ONNX) |
| classes | 0 rect, 1 circle, 2 triangle |
| input | `images` float32 [1, 3, {args.imgsz}, {args.imgsz}], RGB, 0..1, letterboxed (pad 114) |
| output | `output0` float32 {onnx_info['output_shape']} (4 box cxcywh in input pixels + 3 class scores, no NMS) |
| ONNX | opset {onnx_info['opset']}, static batch 1, simplified with onnxslim; metadata props: {', '.join(onnx_info['metadata_keys'])} |
| made with | ultralytics {versions['ultralytics']}, torch {versions['torch']}, onnx {versions['onnx']}, onnxslim {versions['onnxslim']}, onnxruntime {versions['onnxruntime']}, numpy {versions['numpy']}, opencv {versions['cv2']} |
| machine | {machine_description(args.device)} |
| wall time | training {train_s / 60:.1f} min ({epochs_run} epochs), whole script {total_s / 60:.1f} min |

## Data
`edgeinfer.demo.make_dataset(out_dir, n_train={args.n_train}, n_val={args.n_val}, n_test={args.n_test},
imgsz={args.imgsz}, seed={args.seed})`: {args.imgsz}x{args.imgsz} JPEG scenes of 1-6 shapes
(jittered colours, sizes, rotations; slight overlap; shapes cut by the image border) on gradient +
blurred-noise + random-line backgrounds with sensor noise. `train` is trained on, `val` picks the
best epoch, `test` is held out and only used for the figures below.

## Training
`YOLO("{args.init_weights}").train(data=..., epochs={args.epochs}, imgsz={args.imgsz}, batch={args.batch},
workers={args.workers}, device="{args.device}", seed={args.seed}, deterministic=True)`, Ultralytics defaults
otherwise (optimizer auto, mosaic, HSV/flip augmentation). Best epoch (by val fitness): {best_epoch}.

## Held-out accuracy (test split, {args.n_test} images, never used in training or model selection)
| model | mAP50 | mAP50-95 | precision | recall |
|---|---|---|---|---|
| `{PT_NAME}` (PyTorch, {"CPU" if args.device == "cpu" else "cuda:" + str(args.device)}) | **{pt_metrics['map50']:.3f}** | **{pt_metrics['map50_95']:.3f}** | {pt_metrics['precision']:.3f} | {pt_metrics['recall']:.3f} |
| `{ONNX_NAME}` (ONNX Runtime, CPU) | {onnx_metrics['map50']:.3f} | {onnx_metrics['map50_95']:.3f} | {onnx_metrics['precision']:.3f} | {onnx_metrics['recall']:.3f} |

AP50 per class (PyTorch): {per_class}. Bar: held-out mAP50 >= {args.min_map50:.2f}.

## Reproduce
```
{command}
```
(see docs/demo-model.md). Same seed gives the same dataset; training with `deterministic=True`
repeats closely on the same software stack and device type, but the weights are not bit-identical
across CPU/GPU or library versions, and the figures may move slightly.
"""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def onnx_summary(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path))
    out = m.graph.output[0].type.tensor_type.shape
    return {"opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "output_shape": [d.dim_value or d.dim_param for d in out.dim],
            "metadata_keys": [p.key for p in m.metadata_props]}


def main(argv=None) -> int:
    args = parse_args(argv)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "scripts/train_demo_model.py", *sys.argv[1:]])
    t_start = time.time()
    offline_ultralytics_env()
    sys.path.insert(0, str(REPO))
    from edgeinfer.demo import make_dataset

    root = make_dataset(args.data_dir, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                        imgsz=args.imgsz, seed=args.seed)
    data_yaml = str(root / "data.yaml")
    print(f"[train_demo] dataset at {root} ({time.time() - t_start:.1f} s)", flush=True)

    import cv2
    import numpy
    import onnx
    import onnxruntime
    import onnxslim
    import torch
    import ultralytics
    from ultralytics import YOLO

    versions = {"ultralytics": ultralytics.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxslim": onnxslim.__version__, "onnxruntime": onnxruntime.__version__,
                "numpy": numpy.__version__, "cv2": cv2.__version__}
    print(f"[train_demo] versions {versions}", flush=True)

    t_train = time.time()
    if args.init_weights.endswith(".pt") and not Path(args.init_weights).is_file():
        raise SystemExit(f"--init-weights {args.init_weights} is not on disk (Ultralytics would try to download it)")
    model = YOLO(args.init_weights)
    model.train(data=data_yaml, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                device=args.device, seed=args.seed, deterministic=True, project=args.work_dir, name="shapes",
                exist_ok=True, plots=False, verbose=True)
    train_s = time.time() - t_train
    trainer = model.trainer
    best_pt = Path(trainer.best)
    epochs_run = int(trainer.epoch) + 1
    best_epoch = best_epoch_from_results(Path(trainer.save_dir) / "results.csv")
    print(f"[train_demo] trained {epochs_run} epochs in {train_s / 60:.1f} min -> {best_pt}", flush=True)

    best = YOLO(str(best_pt))
    pt_metrics = box_metrics(best.val(data=data_yaml, split="test", imgsz=args.imgsz, batch=args.batch,
                                      device=args.device, plots=False, project=args.work_dir, name="val_test_pt",
                                      exist_ok=True))
    print(f"[train_demo] held-out (test) PT metrics {pt_metrics}", flush=True)

    onnx_path = Path(best.export(format="onnx", imgsz=args.imgsz, opset=17, dynamic=False, simplify=True,
                                 batch=1, device="cpu"))
    onnx_metrics = box_metrics(YOLO(str(onnx_path), task="detect").val(
        data=data_yaml, split="test", imgsz=args.imgsz, batch=1, device="cpu", plots=False,
        project=args.work_dir, name="val_test_onnx", exist_ok=True))
    print(f"[train_demo] held-out (test) ONNX metrics {onnx_metrics}", flush=True)

    if pt_metrics["map50"] < args.min_map50:
        print(f"[train_demo] FAIL: held-out mAP50 {pt_metrics['map50']:.3f} < {args.min_map50}; weights NOT "
              f"written. Train longer (--epochs) or on more data (--n-train).", flush=True)
        return 2
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for src, name in ((best_pt, PT_NAME), (onnx_path, ONNX_NAME)):
        tmp = out / ("." + name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, out / name)
    write_model_card(out / "MODEL_CARD.md", args=args, command=command, versions=versions, pt_metrics=pt_metrics,
                     onnx_metrics=onnx_metrics, train_s=train_s, total_s=time.time() - t_start,
                     epochs_run=epochs_run, best_epoch=best_epoch, onnx_info=onnx_summary(out / ONNX_NAME))
    print(f"[train_demo] OK: wrote {out / PT_NAME}, {out / ONNX_NAME}, {out / 'MODEL_CARD.md'} "
          f"(held-out mAP50 {pt_metrics['map50']:.3f}, mAP50-95 {pt_metrics['map50_95']:.3f}; "
          f"total {(time.time() - t_start) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
