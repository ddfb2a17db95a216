"""`edgeinfer package`: parse flags -> edgeinfer.packager.package_model -> echo the result."""
from __future__ import annotations

import sys
from typing import Optional

import click

from ._common import echo_json


class _ProgressLine:
    """A one-line stderr progress display: redrawn in place on a terminal, start/end lines otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = None

    def __call__(self, label: str, done: int, total: int) -> None:
        total = max(int(total), 1)
        width = 24
        filled = int(width * min(done, total) / total)
        line = f"  {label:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if self._tty:
            click.echo("\r" + line, nl=done >= total, err=True)
        elif done in (0, total) or self._last != label:
            click.echo(line, err=True)
        self._last = label


@click.command("package")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-d", "--device", "devices", required=True, help="Profile names or families, comma-separated (e.g. orin-nx-16gb,orin-nano-8gb or orin).")
@click.option("--precision", type=click.Choice(["fp16", "int8", "best"]), default=None, help="Default: each profile's packaging default.")
@click.option("--calib", type=click.Path(), default=None, help="Calibration images for INT8: a directory, glob, video or .npy.")
@click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default=None,
              help="Default: entropy when any device runs on the DLA, else minmax.")
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
@click.option("--sign", "sign_key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sign the bundle with this Ed25519 key (PREFIX.key from `edgeinfer keygen`).")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle summary as JSON (the `inspect --json` shape).")
def package(model: str, devices: str, precision: Optional[str], calib: Optional[str], calib_method: Optional[str],
            val: Optional[str], accuracy_budget: Optional[float], dla: Optional[str], imgsz: Optional[str], batch: int,
            dynamic: bool, jetpack: Optional[str], out: Optional[str], force: bool, archive: bool, build: bool,
            sign_key: Optional[str], as_json: bool) -> None:
    """Package MODEL (.onnx or Ultralytics .pt) into ONE bundle for one or more Jetson devices."""
    from ..bundle import open_bundle, summarize
    from ..fleet.signals import install_sigterm
    from ..packager import package_model

    install_sigterm()  # SIGTERM unwinds like Ctrl-C: the .partial bundle, temp files and the .pt export child go
    from .inspect_cmd import render_text

    dest = package_model(
        model, devices=devices, precision=precision, calib=calib, calib_method=calib_method, val=val,
        accuracy_budget=accuracy_budget, dla=dla, imgsz=imgsz, batch=batch, dynamic=dynamic, jetpack=jetpack,
        out=out, force=force, archive=archive, build=build, sign=sign_key, progress=_ProgressLine(),
        report=lambda line: click.echo(line, err=as_json),
    )
    summary = summarize(open_bundle(dest))
    if as_json:
        echo_json(summary)
    else:
        click.echo(render_text(summary))
