"""`edgeinfer package`: parse flags -> edgeinfer.packager.package_model -> echo the result."""
from __future__ import annotations

from typing import Any, Optional

import click

from ._common import echo_json


def _ProgressLine() -> Any:
    """Progress on stderr: redrawn in place on a terminal, a line per 10 % with elapsed time and ETA otherwise."""
    from ..packager.progress import ProgressLine

    return ProgressLine(step_percent=10)


@click.command("package")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-d", "--device", "devices", required=True, help="Profile names or families, comma-separated (e.g. orin-nx-16gb,orin-nano-8gb or orin).")
@click.option("--precision", type=click.Choice(["fp16", "int8", "best"]), default=None, help="Default: each profile's packaging default.")
@click.option("--calib", type=click.Path(), default=None, help="Calibration images for INT8: a directory, glob, video or .npy.")
@click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default=None,
              help="Activation range method. Default: minmax, for DLA devices too (percentile: 99.999th of |x|).")
@click.option("--val", type=click.Path(exists=True), default=None, help="Labelled validation set (YOLO data.yaml or dir) for the accuracy report.")
@click.option("--accuracy-budget", type=click.FloatRange(min=0), default=None,
              help="With --val: max INT8 mAP50-95 drop vs FP32, in mAP points (x100); default 1.0, i.e. 0.010 mAP "
                   "(0.512 -> 0.502 passes). Without --val INT8 must agree with FP32 on held-out calibration images "
                   "instead (agreement mAP50-95 >= 0.95 with FP32's boxes as labels and box F1 >= 0.90; generic models: "
                   "output cosine >= 0.99, max "
                   "relative error <= 0.2).")
@click.option("--accept-unmeasured", is_flag=True,
              help="Ship INT8 even when its accuracy cannot be measured (too few FP32/labelled boxes, e.g. "
                   "calibration images with no objects); the bundle's report then says 'not measured'.")
@click.option("--dla", type=click.Choice(["auto", "off", "0", "1"]), default=None, help="DLA use; default: each profile's default.")
@click.option("--imgsz", default=None, help="Input size N or WxH (static).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Static batch size.")
@click.option("--dynamic", is_flag=True, help="Keep dynamic input shapes (GPU only; DLA needs static shapes).")
@click.option("--jetpack", default=None, help="Target JetPack line for placement and calibration cache (default: per device).")
@click.option("-o", "--out", type=click.Path(), default=None, help="Bundle path (default: <model>.bundle[.tar]).")
@click.option("--force", is_flag=True, help="Replace an existing bundle (atomically).")
@click.option("--archive", is_flag=True, help="Write a single-file .tar bundle.")
@click.option("--build", is_flag=True, help="Build TensorRT engines into the bundle now (needs TensorRT: on the device).")
@click.option("--verify/--no-verify", default=None,
              help="Check every ONNX with NVIDIA's parser and builder before writing (default: on when TensorRT or "
                   "TensorRT-RTX is installed; pip install 'edgeinfer[verify]').")
@click.option("--allow-parser-errors", is_flag=True,
              help="Write the bundle even if NVIDIA's parser rejects an artifact (recorded in the manifest).")
@click.option("--preprocess", "preprocess", multiple=True, metavar="KEY=VALUE",
              help="Declare the model's pre-processing (repeatable, or space-separated in one value): "
                   "mean=0.485,0.456,0.406 std=0.229,0.224,0.225 color=rgb|bgr|gray resize=letterbox|stretch|crop "
                   "scale=1/255|none layout=nchw|nhwc pad=114, or the preset 'imagenet'. Default: Ultralytics "
                   "metadata, else letterbox RGB 1/255 with the layout read from the graph.")
@click.option("--sign", "sign_key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sign the bundle with this Ed25519 key (PREFIX.key from `edgeinfer keygen`).")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle summary as JSON on stdout (the `inspect --json` shape; progress goes to stderr).")
def package(model: str, devices: str, precision: Optional[str], calib: Optional[str], calib_method: Optional[str],
            val: Optional[str], accuracy_budget: Optional[float], accept_unmeasured: bool, dla: Optional[str], imgsz: Optional[str], batch: int,
            dynamic: bool, jetpack: Optional[str], out: Optional[str], force: bool, archive: bool, build: bool,
            verify: Optional[bool], allow_parser_errors: bool, preprocess: tuple, sign_key: Optional[str], as_json: bool) -> None:
    """Package MODEL (.onnx or Ultralytics .pt) into ONE bundle for one or more Jetson devices."""
    from ..bundle import open_bundle, summarize
    from ..errors import EdgeInferError
    from ..fleet.signals import install_sigterm
    from ..packager import package_model
    from .inspect_cmd import render_text, with_verification

    install_sigterm()  # SIGTERM unwinds like Ctrl-C: the .partial bundle, temp files and the .pt export child go

    try:
        dest = package_model(
            model, devices=devices, precision=precision, calib=calib, calib_method=calib_method, val=val,
            accuracy_budget=accuracy_budget, accept_unmeasured=accept_unmeasured, dla=dla, imgsz=imgsz, batch=batch, dynamic=dynamic, jetpack=jetpack,
            out=out, force=force, archive=archive, build=build, verify=verify, allow_parser_errors=allow_parser_errors,
            sign=sign_key, progress=_ProgressLine(), preprocess=" ".join(preprocess) if preprocess else None,
            report=lambda line: click.echo(line, err=as_json),
        )
    except OSError as exc:  # the bundle writer names its own disk errors; this catches the rest (work files)
        where = f" ({exc.filename})" if exc.filename else ""
        raise EdgeInferError(f"packaging failed: {exc.strerror or exc}{where}",
                             hint="check that the paths exist and $TMPDIR and the -o disk have free space") from exc
    bundle = open_bundle(dest)
    summary = with_verification(summarize(bundle), bundle.manifest.get("verification"))
    from ..fleet.trust import signature_summary

    summary["signature"] = signature_summary(bundle)  # the same shape as `inspect --json`
    if as_json:
        echo_json(summary)
    else:
        click.echo(render_text(summary))
