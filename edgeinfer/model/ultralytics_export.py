"""Export an Ultralytics ``.pt`` (or model ``.yaml``) to ONNX, offline, in a child process.

Why a child process: Ultralytics reads ``YOLO_OFFLINE``/``YOLO_CONFIG_DIR`` once at import, prints
to stdout, and unpickles the ``.pt`` (arbitrary code). A subprocess keeps all of that out of the
caller's process and lets us keep its output as the ingestion log.

Why a temp copy: Ultralytics writes ``<stem>.onnx`` next to the ``.pt`` (or into the cwd for a
``.yaml``), which would litter -- or overwrite files in -- the user's model directory.

Offline: ``YOLO_OFFLINE=1`` stops the start-up connectivity probe, and a TTF at
``$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf`` stops the font download (``check_font`` in ultralytics/utils/checks.py
looks in the config dir before it downloads).

Example:
    >>> onnx_path, lines = export_ultralytics("best.pt", imgsz=(640, 640), batch=1, dynamic=False,
    ...                                       opset=17, workdir="build/")   # doctest: +SKIP
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ModelError

# The child prints one JSON line (prefixed) with the written file, after Ultralytics' own output.
_MARK = "EDGEINFER_EXPORT_RESULT="
_CHILD = r"""
import json, sys
args = json.loads(sys.argv[1])
from ultralytics import YOLO
model = YOLO(args["source"])
kw = {"imgsz": args["imgsz"]} if args["imgsz"] else {}  # none: the model's own training size
out = model.export(format="onnx", **kw, batch=args["batch"], dynamic=args["dynamic"],
                   opset=args["opset"], simplify=True, half=False, nms=False, device="cpu")
print(sys.argv[2] + json.dumps({"onnx": str(out)}), flush=True)
"""

_EXPORT_TIMEOUT_S = 900


def _find_font() -> str | None:
    """Any TTF on this machine; Ultralytics only needs *a* font file named Arial.ttf."""
    spec = importlib.util.find_spec("matplotlib")  # locate its bundled DejaVu font without importing it
    if spec is not None and spec.origin:
        cand = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if cand.is_file():
            return str(cand)
    found = sorted(glob.glob("/usr/share/fonts/**/*.ttf", recursive=True))
    return found[0] if found else None


def offline_ultralytics_env(config_dir: str | Path, *, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment that keeps Ultralytics offline: ``YOLO_OFFLINE=1`` and a config dir holding
    the ``Arial.ttf`` it would otherwise download (ultralytics/utils/checks.py ``check_font``).

    ``config_dir`` is used unless ``base`` already names a ``YOLO_CONFIG_DIR``; returns a copy of
    ``base`` (default: ``os.environ``) with both set. Must be in place before ``import ultralytics``.

    Example:
        >>> env = offline_ultralytics_env("ycfg", base={})
        >>> env["YOLO_OFFLINE"], Path(env["YOLO_CONFIG_DIR"], "Ultralytics", "Arial.ttf").is_file()
        ('1', True)
    """
    env = dict(os.environ if base is None else base)
    env["YOLO_OFFLINE"] = "1"
    cfg = Path(env.get("YOLO_CONFIG_DIR") or config_dir)
    font = cfg / "Ultralytics" / "Arial.ttf"
    if not font.exists():
        src = _find_font()
        if src:
            font.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, font)
    env["YOLO_CONFIG_DIR"] = str(cfg)
    return env


def export_ultralytics(source: str | Path, *, imgsz: tuple[int, int] | None, batch: int, dynamic: bool,
                       opset: int, workdir: str | Path) -> tuple[Path, list[str]]:
    """Export ``source`` (.pt or model .yaml) to ONNX in ``workdir``; returns (onnx path, log lines).

    Raises ModelError with Ultralytics' last output lines when the export fails.
    """
    source = Path(source)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=workdir))
    try:
        if source.is_file():
            local = str(tmp / source.name)
            shutil.copyfile(source, local)
        else:
            local = source.name  # a model .yaml Ultralytics ships (e.g. yolo11n.yaml): random weights
        args = {"source": local, "imgsz": list(imgsz) if imgsz else None, "batch": int(batch),
                "dynamic": bool(dynamic), "opset": int(opset)}
        proc = _run_child(args, cwd=tmp, env=offline_ultralytics_env(Path(tmp) / ".ultralytics"))
        lines = [ln for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
        result = [ln for ln in lines if ln.startswith(_MARK)]
        if proc.returncode != 0 or not result:
            tail = " | ".join(ln for ln in lines[-6:] if not ln.startswith(_MARK))
            raise ModelError(
                f"Ultralytics could not export {source} to ONNX: {tail[-600:]}",
                hint="check that the file is an Ultralytics .pt (`yolo export model=<file> format=onnx` should work), "
                     "or export it to ONNX yourself and pass the .onnx",
            )
        produced = Path(json.loads(result[-1][len(_MARK):])["onnx"])
        if not produced.is_absolute():
            produced = tmp / produced
        target = workdir / f"{source.stem}.export.onnx"
        os.replace(produced, target)
        return target, [ln for ln in lines if not ln.startswith(_MARK)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_child(args: dict, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args), _MARK], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=_EXPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"Ultralytics export did not finish in {_EXPORT_TIMEOUT_S} s",
                         hint="export to ONNX separately and pass the .onnx") from exc
