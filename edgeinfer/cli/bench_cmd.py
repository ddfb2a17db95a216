"""`edgeinfer bench`: SLA tuner (knee per batch/delay/instances, written as a run config), a plain
batch/delay sweep, or SLA scenarios (single, burst, sustained)."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional

import click

from ._common import echo_json


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


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _check_folder(path: Optional[str], flag: str) -> None:
    """Fail before minutes of measuring, not after, when an output file cannot be written."""
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise click.BadParameter(f"folder {os.path.dirname(os.path.abspath(path))!r} does not exist", param_hint=flag)


@click.command("bench")
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--batch", "batches", default="1,2,4,8,16", show_default=True,
              help="Batch sizes (comma-separated); sizes the engine cannot take are skipped with the reason.")
@click.option("--delays-ms", default="0,5", show_default=True, help="Max queue delays to try (ms, comma-separated).")
@click.option("--sla-p95-ms", type=float, default=None,
              help="Latency SLA in ms. Tunes: each candidate's knee (highest throughput with P95 <= this); "
                   "with --scenario: PASS/FAIL per scenario.")
@click.option("--duration", type=float, default=2.0, show_default=True, help="Seconds per sample.")
@click.option("--max-repeats", type=click.IntRange(min=1), default=6, show_default=True,
              help="Samples per offered rate at most; sampling stops once the last 3 P95s agree within --tolerance.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.15, show_default=True,
              help="Relative P95 agreement that counts as stable.")
@click.option("--min-frames", type=click.IntRange(min=1), default=30, show_default=True,
              help="Tuner: a sample lasts longer than --duration where needed to hold this many frames.")
@click.option("--resolution", type=click.FloatRange(0.001, 0.5), default=0.05, show_default=True,
              help="Tuner: stop when the passing and failing offered rates are this close (relative).")
@click.option("--scenario", "scenario_names", multiple=True, type=click.Choice(["single", "burst", "sustained"]),
              help="Replay load shapes instead of sweeping (repeatable); uses the first --batch value.")
@click.option("--max-delay-ms", type=float, default=5.0, show_default=True, help="Queue delay for --scenario runs.")
@click.option("--load", type=float, default=0.8, show_default=True, help="Offered load for burst/sustained, as a fraction of capacity.")
@click.option("--instances", "instance_sets", multiple=True,
              help="Engine instances: a count or names like gpu,dla0,dla1; repeat to compare several (tuner).")
@click.option("--video", type=click.Path(exists=True, dir_okay=False), default=None, help="Frames from this video (default: synthetic 640x480).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout (progress goes to stderr).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON to FILE.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Write a PNG plot.")
@click.option("--write-config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Write the tuner's winner as a config for `edgeinfer run --config` (needs --sla-p95-ms).")
def bench(bundle: str, batches: str, delays_ms: str, sla_p95_ms: Optional[float], duration: float, max_repeats: int,
          tolerance: float, min_frames: int, resolution: float, scenario_names, max_delay_ms: float, load: float, instance_sets,
          video: Optional[str], as_json: bool, out_path: Optional[str], plot_path: Optional[str],
          config_path: Optional[str]) -> None:
    """Benchmark BUNDLE (bundle directory or .onnx) on this machine.

    With --sla-p95-ms (no --scenario) it tunes: per batch size, max delay and instance set, the
    largest throughput whose P95 stays under the SLA, each rate sampled until its P95 is stable.

    Example: edgeinfer bench bundle/ --batch 1,2,4 --sla-p95-ms 50 --write-config tuned.json --out bench.json
    """
    from ..pipeline import bench as lib
    from ..pipeline.config import engine_line
    from ..pipeline.models import resolve_models

    batch_list = _number_list(batches, "--batch", cast=int, minimum=1)
    delay_list = _number_list(delays_ms, "--delays-ms", cast=float, minimum=0)
    if duration <= 0:
        raise click.BadParameter("must be > 0", param_hint="--duration")
    if not 0 < load <= 2:
        raise click.BadParameter("must be in (0, 2]", param_hint="--load")
    if sla_p95_ms is not None and sla_p95_ms <= 0:
        raise click.BadParameter("must be > 0", param_hint="--sla-p95-ms")
    if config_path and (sla_p95_ms is None or scenario_names):
        raise click.BadParameter("needs --sla-p95-ms (and no --scenario): the config holds the tuner's winner",
                                 param_hint="--write-config")
    for path, flag in ((out_path, "--out"), (plot_path, "--plot"), (config_path, "--write-config")):
        _check_folder(path, flag)

    def say(msg: str) -> None:
        click.echo(msg, err=as_json)  # with --json, stdout carries only the JSON

    frames = lib.video_frames(video) if video else lib.synthetic_frames()
    loaded: List[tuple] = []  # (instances label, models)
    owned: List[Any] = []
    load_before = _loadavg()
    try:
        for label in instance_sets or (None,):
            named, own, _ = resolve_models(bundle, instances=label)
            owned.extend(own)
            loaded.append((label, [m for _, m in named]))
        say(f"bench: {engine_line(loaded[0][1])}, bundle {bundle}")
        stability = {"k": 3, "tolerance": tolerance, "max_repeats": max_repeats}
        if scenario_names:
            result = _scenarios(lib, loaded[0][1], frames, names=list(scenario_names), batch_list=batch_list,
                                max_delay_ms=max_delay_ms, duration=duration, sla=sla_p95_ms, load=load, say=say)
        elif sla_p95_ms is not None:
            result = _tune(loaded, frames, batch_list, delay_list, sla=sla_p95_ms, duration=duration, resolution=resolution,
                           stability=stability, min_frames=min_frames, say=say)
        else:
            result = _sweep(lib, loaded, frames, batch_list, delay_list, duration=duration, stability=stability, say=say)
        result["model_id"] = getattr(loaded[0][1][0], "model_id", None)
        if config_path and result.get("best"):
            best_models = next(models for label, models in loaded if label == result["best"]["instances"])
            _write_config(config_path, result, best_models[0], bundle=bundle, duration=duration)
            say(f"wrote config {config_path} (use: edgeinfer run {bundle} --config {config_path} --source ...)")
    finally:
        for m in owned:
            if hasattr(m, "close"):
                m.close()
    result.update({"model": bundle, "frame_shape": list(frames[0].shape), "engine": engine_line(loaded[0][1]),
                   "load_average": {"before": load_before, "after": _loadavg()}})
    if plot_path:
        _plot(result, plot_path, bundle=bundle, sla=sla_p95_ms)
    if out_path:
        from .run_cmd import write_json_atomic

        write_json_atomic(out_path, result)
    if as_json:
        echo_json(result)
    if sla_p95_ms is not None and not _met(result):
        raise SystemExit(1)


def _met(result: Dict[str, Any]) -> bool:
    if result["mode"] == "scenarios":
        return all(s["pass"] for s in result["scenarios"].values())
    return result.get("best") is not None


def _loadavg() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _scenarios(lib, models, frames, *, names, batch_list, max_delay_ms, duration, sla, load, say) -> Dict[str, Any]:
    from ..pipeline.tune import batch_limit, check_batches

    limit, engine = batch_limit(models)
    check_batches(batch_list[:1], limit=limit, engine=engine)  # the one batch scenarios use must fit
    report = lib.scenarios(models, frames, names=names, batch=batch_list[0], max_delay_ms=max_delay_ms,
                           duration=duration, sla_p95_ms=sla, load=load)
    say(f"SLA compliance (capacity {report['capacity_fps']:.1f} FPS, batch {report['batch']}, "
        f"max delay {report['max_delay_ms']:g} ms, load {report['load']:.0%})")
    say(f"{'scenario':<10} {'frames':>7} {'FPS':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  result")
    for name, s in report["scenarios"].items():
        verdict = "-" if s["pass"] is None else ("PASS" if s["pass"] else f"FAIL (p95 > {sla:g} ms)")
        say(f"{name:<10} {s['frames']:>7} {s['throughput_fps']:>8.1f} {_fmt(s['p50_ms']):>8} {_fmt(s['p95_ms']):>8} "
            f"{_fmt(s['p99_ms']):>8}  {verdict}")
    return {"mode": "scenarios", **report}


def _sweep(lib, loaded, frames, batch_list, delay_list, *, duration, stability, say) -> Dict[str, Any]:
    from ..pipeline.tune import batch_limit, check_batches

    points = []
    for label, models in loaded:
        limit, engine = batch_limit(models)
        usable, skipped = check_batches(batch_list, limit=limit, engine=engine)
        for reason in skipped:
            say(f"skipping {reason}")
        res = lib.sweep(models, frames, batches=usable, delays_ms=delay_list, duration=duration, stability=stability,
                        progress=lambda p, label=label: say(_point_line(dict(p, instances=label))))
        points.extend(dict(p, instances=label) for p in res["points"])
    best = max(points, key=lambda p: p["throughput_fps"] or 0.0, default=None)
    if best:
        say(f"best: batch {best['batch']}, max delay {best['max_delay_ms']:g} ms{_inst(best)} -> "
            f"{best['throughput_fps']:.1f} FPS at P95 {_fmt(best['p95_ms'])} ms")
    return {"mode": "sweep", "points": points, "best": best, "sla_p95_ms": None}


def _tune(loaded, frames, batch_list, delay_list, *, sla, duration, resolution, stability, min_frames, say) -> Dict[str, Any]:
    from ..pipeline.tune import TuneSettings, tune

    settings = TuneSettings(sla_p95_ms=sla, duration=duration, resolution=resolution, min_frames=min_frames, **stability)
    started = time.perf_counter()

    def progress(kind: str, info: Dict[str, Any]) -> None:
        stamp = f"[{time.perf_counter() - started:6.1f} s]"
        if kind == "skip":
            say(f"{stamp} skipping {info['reason']}")
        elif kind == "capacity":
            say(f"{stamp} batch {info['batch']}{_inst(info)}: measuring capacity")
        elif kind == "candidate":
            say(f"{stamp} batch {info['batch']}, max delay {info['max_delay_ms']:g} ms{_inst(info)}: capacity "
                f"{info['capacity_fps']:.1f} FPS; searching for the knee under P95 {sla:g} ms")
        elif kind == "point":
            say(f"{stamp}   {_point_line(info)}")
        elif kind == "knee":
            knee, brk = info["knee"], info["breaking"]
            line = (f"knee {knee['throughput_fps']:.1f} FPS at P95 {knee['p95_ms']:.1f} ms" if knee else "no knee")
            if brk is not None:
                line += f"; {brk['offered_fps']:.1f} FPS offered breaks it (P95 {_fmt(brk['p95_ms'])} ms)"
            say(f"{stamp}   {line}" + (f" ({info['note']})" if info.get("note") else ""))

    result = tune(loaded, frames, batches=batch_list, delays_ms=delay_list, settings=settings, progress=progress)
    best = result["best"]
    if best is None:
        say(f"no configuration meets P95 <= {sla:g} ms")
    else:
        k = best["knee"]
        say(f"best: batch {best['batch']}, max delay {best['max_delay_ms']:g} ms{_inst(best)} -> {k['throughput_fps']:.1f} FPS "
            f"at P95 {k['p95_ms']:.1f} ms (spread {k['p95_spread_ms'][0]:.1f}-{k['p95_spread_ms'][1]:.1f} ms over "
            f"{k['repeats']} samples; SLA {sla:g} ms)")
    return result


def _point_line(p: Dict[str, Any]) -> str:
    spread = p.get("p95_spread_ms")
    line = (f"batch {p['batch']:>2}  delay {p['max_delay_ms']:>5g} ms{_inst(p)}  offered {p['offered_fps']:>8.1f}  "
            f"got {_fmt(p['throughput_fps']):>8} FPS  p50 {_fmt(p['p50_ms'])}  p95 {_fmt(p['p95_ms'])}")
    if spread:
        line += f" ({spread[0]:.1f}-{spread[1]:.1f}, {p['repeats']} samples{'' if p.get('stable') else ', not stable'})"
    line += f"  p99 {_fmt(p['p99_ms'])} ms  mean batch {p['mean_batch']}"
    if p.get("meets_sla") is not None:
        line += "  SLA ok" if p["meets_sla"] else "  SLA miss"
    return line


def _inst(info: Dict[str, Any]) -> str:
    return f", instances {info['instances']}" if info.get("instances") else ""


def _write_config(path: str, result: Dict[str, Any], model: Any, *, bundle: str, duration: float) -> None:
    from .. import __version__
    from ..pipeline.config import PipelineConfig, describe_engine, machine_info

    best, knee, brk = result["best"], result["best"]["knee"], result["best"]["breaking"]
    measured = {k: knee.get(k) for k in ("throughput_fps", "offered_fps", "p50_ms", "p95_ms", "p99_ms", "p95_spread_ms",
                                         "repeats", "stable", "mean_batch")}
    measured.update(sla_p95_ms=result["sla_p95_ms"], capacity_fps=best["capacity_fps"],
                    sample_seconds=knee.get("sample_seconds", duration),
                    breaking_offered_fps=brk["offered_fps"] if brk else None, breaking_p95_ms=brk["p95_ms"] if brk else None,
                    load_average=_loadavg(), measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    cfg = PipelineConfig(batch=best["batch"], max_delay_ms=float(best["max_delay_ms"]), instances=best["instances"],
                         queue_size=max(2, int(best["batch"])),  # a live source's queue must hold a full batch
                         model={"id": getattr(model, "model_id", None), "path": os.path.abspath(bundle)},
                         machine={**machine_info(), **describe_engine(model)}, measured=measured,
                         created_by=f"edgeinfer {__version__} bench")
    cfg.write(path)


def _plot(result: Dict[str, Any], path: str, *, bundle: str, sla: Optional[float]) -> None:
    from ..pipeline import bench_plot

    if result["mode"] == "scenarios":
        bench_plot.plot_scenarios(result, path, sla=sla)
    else:
        plot_result = result if result["mode"] == "sweep" else dict(result, best=(result["best"] or {}).get("knee"))
        bench_plot.plot_sweep(plot_result, path, title=os.path.basename(os.path.normpath(bundle)))
