"""`edgeinfer doctor`: check JetPack, TensorRT, CUDA, DLA, power mode, OpenCV, backends and disk."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ._common import echo_json


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--quick", is_flag=True,
              help="Do not import TensorRT/OpenCV/ONNX Runtime/CUDA bindings, only look for them (container HEALTHCHECK).")
@click.option("--spool", "spool_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Uplink spool directory to check [default: $EDGEINFER_SPOOL or ~/.cache/edgeinfer/spool].")
@click.option("--engine-cache", "engine_cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for engines/timing caches to check for space (engines themselves are written into each bundle) [default: $EDGEINFER_ENGINE_CACHE or ~/.cache/edgeinfer/engines].")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Read system files under this directory (for fixture trees and chroots).")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, quick: bool, spool_dir: Optional[Path],
           engine_cache_dir: Optional[Path], root: Path) -> None:
    """Check this machine, one line per item: OK, WARN or FAIL with what to do (SKIP = not applicable here).

    Exits 1 when any check FAILs, so `edgeinfer doctor --quick --json` works as a container HEALTHCHECK.
    """
    from ..doctor import run_doctor

    report = run_doctor(root=root, quick=quick, spool_dir=spool_dir, engine_cache_dir=engine_cache_dir)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.format_text())
    ctx.exit(report.exit_code)
