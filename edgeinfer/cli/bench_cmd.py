"""`edgeinfer bench`: batch/delay sweep against a P95 SLA, or SLA scenarios (single, burst, sustained)."""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional

import click

from .run_cmd import write_json_atomic


def _number_list(text: str, flag: str, *, cast: Callable[[str], Any], minimum: float) -> List[Any]:
    """Parse a comma-separated list like ``1,2,4`` (a bad value is a usage error naming the flag)."""
    kind = "integers" if cast is int else "numbers"
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of {kind}", param_hint=flag) from None
    if not values or any(v < minimum for v in values):
        raise click.BadParameter(f"values must be >= {minimum:g}", param_hint=flag)
    return values


def _int_list(text: str, flag: str) -> List[int]:
    return _number_list(text, flag, cast=int, minimum=1)


def _float_list(text: str, flag: str) -> List[float]:
    return _number_list(text, flag, cast=float, minimum=0)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


@click.command("bench")
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--batch", "batches", default="1,2,4,8,16", show_default=True, help="Batch sizes to sweep (comma-separated).")
@click.option("--delays-ms", default="0,5", show_default=True, help="Max queue delays to sweep (ms).")
@click.option("--sla-p95-ms", type=float, default=None, help="Latency SLA: P95 must stay at or below this.")
@click.option("--duration", type=float, default=3.0, show_default=True, help="Seconds per measurement point.")
@click.option("--scenario", "scenario_names", multiple=True, type=click.Choice(["single", "burst", "sustained"]),
              help="Replay load shapes instead of sweeping (repeatable); uses the first --batch value.")
@click.option("--max-delay-ms", type=float, default=5.0, show_default=True, help="Queue delay for --scenario runs.")
@click.option("--load", type=float, default=0.8, show_default=True, help="Offered load for burst/sustained, as a fraction of capacity.")
@click.option("--instances", default=None, help="Engine instances: a count or names like gpu,dla0,dla1.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False), default=None, help="Frames from this video (default: synthetic 640x480).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write results as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Write a PNG plot.")
def bench(bundle: str, batches: str, delays_ms: str, sla_p95_ms: Optional[float], duration: float, scenario_names,
          max_delay_ms: float, load: float, instances: Optional[str], video: Optional[str], json_path: Optional[str],
          plot_path: Optional[str]) -> None:
    """Benchmark BUNDLE (bundle directory or .onnx) on this machine.

    Example: edgeinfer bench bundle/ --batch 1,2,4,8 --sla-p95-ms 50 --json bench.json --plot bench.png
    """
    from ..pipeline import bench as lib
    from ..pipeline.models import resolve_models

    batch_list = _int_list(batches, "--batch")
    delay_list = _float_list(delays_ms, "--delays-ms")
    if duration <= 0:
        raise click.BadParameter("must be > 0", param_hint="--duration")
    if not 0 < load <= 2:
        raise click.BadParameter("must be in (0, 2]", param_hint="--load")
    frames = lib.video_frames(video) if video else lib.synthetic_frames()
    named, owned, _ = resolve_models(bundle, instances=instances)
    models = [m for _, m in named]
    try:
        if scenario_names:
            report = lib.scenarios(models, frames, names=list(scenario_names), batch=batch_list[0], max_delay_ms=max_delay_ms,
                                   duration=duration, sla_p95_ms=sla_p95_ms, load=load)
            _print_scenarios(report)
            result = {"mode": "scenarios", **report}
            if plot_path:
                from ..pipeline.bench_plot import plot_scenarios

                plot_scenarios(report, plot_path, sla=sla_p95_ms)
        else:
            result = lib.sweep(models, frames, batches=batch_list, delays_ms=delay_list, duration=duration,
                               sla_p95_ms=sla_p95_ms, progress=_print_point)
            result["mode"] = "sweep"
            _print_best(result)
            if plot_path:
                from ..pipeline.bench_plot import plot_sweep

                plot_sweep(result, plot_path, title=os.path.basename(os.path.normpath(bundle)))
    finally:
        for m in owned:
            if hasattr(m, "close"):
                m.close()
    result["model"] = bundle
    result["frame_shape"] = list(frames[0].shape)
    if json_path:
        write_json_atomic(json_path, result)
    if sla_p95_ms is not None and scenario_names and not all(s["pass"] for s in result["scenarios"].values()):
        raise SystemExit(1)


def _print_point(p) -> None:
    click.echo(f"batch {p['batch']:>2}  delay {p['max_delay_ms']:>5g} ms  offered {p['offered_fps']:>8.1f}  "
               f"got {p['throughput_fps']:>8.1f} FPS  p50 {_fmt(p['p50_ms'])}  p95 {_fmt(p['p95_ms'])}  "
               f"p99 {_fmt(p['p99_ms'])} ms  mean batch {p['mean_batch']}"
               + ("" if p["meets_sla"] is None else ("  SLA ok" if p["meets_sla"] else "  SLA miss")))


def _print_best(result) -> None:
    best = result["best"]
    if best is None:
        click.echo(f"no configuration meets P95 <= {result['sla_p95_ms']} ms")
    else:
        click.echo(f"best: batch {best['batch']}, max delay {best['max_delay_ms']:g} ms -> {best['throughput_fps']:.1f} FPS "
                   f"at P95 {best['p95_ms']:.1f} ms" + ("" if result["sla_p95_ms"] is None else f" (SLA {result['sla_p95_ms']:g} ms)"))


def _print_scenarios(report) -> None:
    sla = report["sla_p95_ms"]
    click.echo(f"SLA compliance (capacity {report['capacity_fps']:.1f} FPS, batch {report['batch']}, "
               f"max delay {report['max_delay_ms']:g} ms, load {report['load']:.0%})")
    click.echo(f"{'scenario':<10} {'frames':>7} {'FPS':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  result")
    for name, s in report["scenarios"].items():
        verdict = "-" if s["pass"] is None else ("PASS" if s["pass"] else f"FAIL (p95 > {sla:g} ms)")
        click.echo(f"{name:<10} {s['frames']:>7} {s['throughput_fps']:>8.1f} {_fmt(s['p50_ms']):>8} {_fmt(s['p95_ms']):>8} "
                   f"{_fmt(s['p99_ms']):>8}  {verdict}")
