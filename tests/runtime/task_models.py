"""Ultralytics models of every task, built from the YAMLs Ultralytics ships (random weights), exported
to small static ONNX files for parity tests.

Fresh Ultralytics weights give (nearly) input-independent outputs: PyTorch's default conv init
shrinks the signal at every layer, so by the head the features are ~1e-5 and every anchor gets the
same score (the class bias, log(5 / nc / cells) ~ 1e-5 after the sigmoid). So the convolutions are
re-initialised with He (Kaiming) normal init, which keeps the signal's scale through the network,
and the class biases are raised by 9.5: scores then spread over ~0.1..0.7, depend on the image, and
the parity tests compare real NMS and mask work, never zero boxes or ties. The classifier's last
layer is scaled up so its top-k is not a near-tie of 1000 equal probabilities.

Run as a script (in a child process, offline): ``python task_models.py OUT_DIR yolo11n-seg.yaml ...``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_MARK = "TASK_MODEL="


def export_all(out_dir: Path, yamls, *, imgsz: int = 160, cls_imgsz: int = 64, timeout: int = 900) -> dict:
    """{yaml: onnx path}; one child process for all of them (Ultralytics imports once)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, __file__, str(out_dir), str(imgsz), str(cls_imgsz), *yamls],
                          capture_output=True, text=True, timeout=timeout, cwd=out_dir, env=dict(os.environ))
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            item = json.loads(line[len(_MARK):])
            found[item["yaml"]] = Path(item["onnx"])
    if proc.returncode != 0 or len(found) != len(yamls):
        raise RuntimeError(f"export failed: {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    return found


def _raise_biases(model, shift: float = 9.5) -> None:
    import torch

    torch.manual_seed(0)
    head = model.model.model[-1]
    with torch.no_grad():
        for mod in model.model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        for name in ("cv3", "one2one_cv3"):
            for branch in getattr(head, name, None) or []:
                branch[-1].bias.add_(shift)
        if hasattr(head, "linear"):  # classifier: spread the logits
            head.linear.weight.mul_(40.0)


def _main(out_dir: str, imgsz: str, cls_imgsz: str, *yamls: str) -> None:
    from ultralytics import YOLO

    os.chdir(out_dir)
    for y in yamls:
        model = YOLO(y)
        _raise_biases(model)
        size = int(cls_imgsz) if "-cls" in y else int(imgsz)
        end2end = "yolo26" in y or "v10" in y
        path = model.export(format="onnx", imgsz=size, opset=17, simplify=False, dynamic=False,
                            nms=False if end2end else None)
        print(_MARK + json.dumps({"yaml": y, "onnx": str(Path(out_dir, path).resolve())}), flush=True)


if __name__ == "__main__":
    _main(*sys.argv[1:])
