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
@click.option("--accuracy-budget", type=float, default=None, help="Max mAP50 drop INT8 may cost (e.g. 0.01).")
@click.option("--dla", type=click.Choice(["auto", "off", "0", "1"]), default=None, help="DLA use; default: each profile's default.")
@click.option("--imgsz", default=None, help="Input size N or WxH (static).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Static batch size.")
@click.option("--dynamic", is_flag=True, help="Keep dynamic input shapes (GPU only; DLA needs static shapes).")
@click.option("--jetpack", default=None, help="Target JetPack line for placement and calibration cache (default: per device).")
@click.option("-o", "--out", type=click.Path(), default=None, help="Bundle path (default: <model>.bundle[.tar]).")
@click.option("--force", is_flag=True, help="Replace an existing bundle (atomically).")
@click.option("--archive", is_flag=True, help="Write a single-file .tar bundle.")
@click.option("--build", is_flag=True, help="Build TensorRT engines into the bundle now (needs TensorRT: on the device).")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle summary as JSON (the `inspect --json` shape).")
def package(model: str, devices: str, precision: Optional[str], calib: Optional[str], calib_method: Optional[str],
            val: Optional[str], accuracy_budget: Optional[float], dla: Optional[str], imgsz: Optional[str], batch: int,
            dynamic: bool, jetpack: Optional[str], out: Optional[str], force: bool, archive: bool, build: bool,
            as_json: bool) -> None:
    """Package MODEL (.onnx or Ultralytics .pt) into ONE bundle for one or more Jetson devices."""
    from ..bundle import open_bundle, summarize
    from ..packager import package_model
    from .inspect_cmd import render_text

    dest = package_model(
        model, devices=devices, precision=precision, calib=calib, calib_method=calib_method, val=val,
        accuracy_budget=accuracy_budget, dla=dla, imgsz=imgsz, batch=batch, dynamic=dynamic, jetpack=jetpack,
        out=out, force=force, archive=archive, build=build, progress=_ProgressLine(),
        report=lambda line: click.echo(line, err=as_json),
    )
    summary = summarize(open_bundle(dest))
    if as_json:
        echo_json(summary)
    else:
        click.echo(render_text(summary))
