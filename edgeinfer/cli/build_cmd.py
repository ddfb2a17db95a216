"""`edgeinfer build BUNDLE`: build the bundle's TensorRT engine on this Jetson and add it to the bundle;
`edgeinfer build BUNDLE --import ENGINE`: record an engine built by hand (a recipe's trtexec command).

Without TensorRT a build stops before touching anything, with the one-line install hint (JetPack);
an import works without it when --tensorrt gives the device's full version.
Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

import click

from .._deps import require
from ._common import echo_json


def _parse_dla_core(value: Optional[str]) -> Union[None, str, int]:
    if value is None:
        return None
    if value.lower() == "gpu":
        return "gpu"
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r} is neither a DLA core number nor 'gpu'", param_hint="--dla-core")


def _describe(record: Dict[str, Any]) -> str:
    key = record["key"]
    target = "GPU" if key["dla_core"] is None else f"DLA{key['dla_core']} + GPU fallback"
    placement = record.get("placement", {})
    actual = placement.get("actual", {})
    lines = [f"built {record['path']} (TensorRT {record['tensorrt_version']}, {key['precision']}, {target}) "
             f"in {record['build_seconds']:.1f} s",
             f"  layers: {actual.get('dla', 0)} ONNX nodes on DLA, {actual.get('gpu', 0)} on GPU"]
    differences = placement.get("differences") or []
    if differences:
        lines.append(f"  differs from the placement plan on {len(differences)} node(s):")
        lines += [f"    {d['node']}: planned {d['planned']}, runs on {d['actual']}" for d in differences[:20]]
    return "\n".join(lines)


@click.command("build")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--device", default="auto", show_default=True,
              help="Device profile to build for; 'auto' detects this Jetson.")
@click.option("--dla-core", "dla_core", default=None, metavar="N|gpu",
              help="DLA core to build for, or 'gpu'. Default: the bundle's placement plan.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Persistent TensorRT timing cache file (default: ~/.cache/edgeinfer/timing/).")
@click.option("--import", "import_engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="ENGINE", help="Record an engine built by hand (the recipe's trtexec command) instead of building.")
@click.option("--tensorrt", default=None, metavar="X.Y.Z.B",
              help="With --import where TensorRT is not installed: the device's full TensorRT version.")
@click.option("--json", "as_json", is_flag=True, help="Print the engine records as JSON on stdout.")
def build(bundle: Path, device: str, dla_core: Optional[str], timing_cache: Optional[Path],
          import_engine: Optional[Path], tensorrt: Optional[str], as_json: bool) -> None:
    """Build the TensorRT engine for BUNDLE on this device and add it to the bundle.

    Example: edgeinfer build shapes.bundle --dla-core 0
    """
    core = _parse_dla_core(dla_core)
    if import_engine is not None:
        _import(bundle, import_engine, device=device, dla_core=core, tensorrt=tensorrt, as_json=as_json)
        return
    require("tensorrt", feature="building TensorRT engines")  # before anything reads or writes the bundle
    from ..engine import build_engines

    records = build_engines(bundle, device=device, dla_core=core, timing_cache=timing_cache)
    if as_json:
        echo_json(records)
        return
    for record in records:
        click.echo(_describe(record))


def _import(bundle: Path, engine: Path, *, device: str, dla_core: Any, tensorrt: Optional[str], as_json: bool) -> None:
    from ..engine.engine_import import import_engine

    records = import_engine(bundle, engine, device=device, dla_core=dla_core, tensorrt=tensorrt)
    if as_json:
        echo_json(records)
        return
    for record in records:
        key = record["key"]
        target = "GPU" if key["dla_core"] is None else f"DLA{key['dla_core']}"
        checked = "checked with TensorRT" if record["imported"]["checked_with_tensorrt"] else "not loaded (no TensorRT here)"
        click.echo(f"recorded {record['path']} (TensorRT {record['tensorrt_version']}, {key['precision']}, {target}; "
                   f"{checked}) from {engine}")
