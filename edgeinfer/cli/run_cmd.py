"""`edgeinfer run`: a bundle (or ONNX file) over sources, with a live status line and a final summary."""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import click

from ..errors import ConfigError
from ._common import echo_json
from ._fleet_opts import FleetRun, fleet_options


def write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    """Write JSON atomically (temp file in the same folder, then os.replace)."""
    from ..pipeline._atomic import write_json_atomic as _write

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"folder {folder!r} for {path!r} does not exist", hint="create it first")
    _write(path, data)


def summary_lines(stats: Dict[str, Any]) -> list:
    lat = stats["latency"]
    e2e, inf = lat["end_to_end"], lat["infer"]

    def fmt(s):
        if not s or s.get("p50_ms") is None:
            return "-"
        return f"p50 {s['p50_ms']:.1f} / p95 {s['p95_ms']:.1f} / p99 {s['p99_ms']:.1f} ms"

    lines = [
        f"frames: {stats['frames_out']} out of {stats['frames_in']} read in {stats['uptime_s']:.1f} s "
        f"({stats['fps_avg']:.1f} FPS average)",
        f"end-to-end latency: {fmt(e2e)}",
        f"inference per batch: {fmt(inf)} (mean batch {stats['batch']['mean_size']})",
        f"drops: {stats['drops']['total']} (source queues {sum(stats['drops']['source_queue'].values())}, "
        f"sink {stats['drops']['sink']}) | reconnects: {stats['reconnects']}",
    ]
    if stats["failover"]["active"]:
        lines.append(f"failover: {stats['failover']['events']}")
    tel = stats.get("telemetry") or {}
    lines.append(f"telemetry: {tel.get('source', 'not available')}"
                 + (f", {tel['power_w']:.2f} W" if tel.get("power_w") else ""))
    up = stats.get("uplink")
    if isinstance(up, dict) and "sent" in up:
        lines.append(f"uplink: {up['sent']} sent, {up.get('queued', 0)} queued, {up.get('dropped_total', 0)} dropped "
                     f"({up.get('state', '?')})" + (f", last error: {up['last_error']}" if up.get("last_error") else ""))
    ana = stats.get("analytics")
    if ana:
        counts = "; ".join(f"{sid} {v}" for sid, v in (ana.get("sources") or {}).items() if v)
        lines.append(f"analytics: {ana['events']} events" + (f" | {counts}" if counts else "")
                     + (f" | clips {ana['clips']}" if ana.get("clips") else ""))
    return lines


def _deprecated_stats_json(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    if value is not None:
        click.echo("warning: --stats-json is deprecated and will be removed; use --stats FILE (same content)", err=True)
    return value


def _stats_target(stats_path: Optional[str], stats_json: Optional[str]) -> Optional[str]:
    if stats_path and stats_json and os.path.abspath(stats_path) != os.path.abspath(stats_json):
        raise click.BadParameter("--stats-json is the old name of --stats; give one of them", param_hint="--stats")
    return stats_path or stats_json


def engine_fields(engines: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What `run --json` says about the engines: the first instance's backend/provider/device, and all of them."""
    first = engines[0] if engines else {}
    return {"backend": first.get("backend"), "provider": first.get("provider"), "device": first.get("device"),
            "engines": engines}


def start_line(engines: List[Dict[str, Any]], bundle: str, n_sources: int) -> str:
    """``run: onnxruntime (CPUExecutionProvider) on cpu | model shapes@1a2b3c4d5e6f | 1 source``.

    Example:
        >>> start_line([{"backend": "tensorrt", "provider": None, "device": "dla0", "model_id": "y@ab12"}] * 2,
        ...            "y.bundle", 3)
        'run: 2 x tensorrt on dla0 | model y@ab12 | 3 sources'
    """
    from ..pipeline.config import engine_line  # the same words as bench's first line

    what = engine_line(engines)
    model = next((e["model_id"] for e in engines if e.get("model_id")), None) or os.path.basename(bundle.rstrip("/"))
    return f"run: {what} | model {model} | {n_sources} source{'s' if n_sources != 1 else ''}"


def _live_status(p, interval: float, duration: Optional[float]) -> None:
    from ..pipeline.stats import status_line

    tty = sys.stderr.isatty()
    start = time.perf_counter()
    next_line = start + interval
    while p.running:
        time.sleep(0.1)
        now = time.perf_counter()
        if duration is not None and now - start >= duration:
            return
        if interval > 0 and now >= next_line:
            line = status_line(p.stats())
            click.echo(("\r" + line[:160].ljust(160)) if tty else line, err=True, nl=not tty)
            next_line = now + interval
    if tty:
        click.echo("", err=True)


def _parse_batch(batch: int, max_delay_ms: float) -> Tuple[int, float]:
    if batch < 1:
        raise click.BadParameter("must be >= 1", param_hint="--batch")
    if max_delay_ms < 0:
        raise click.BadParameter("must be >= 0", param_hint="--max-delay-ms")
    return batch, max_delay_ms


def _parse_confs(confs) -> Tuple[float, Dict[str, float]]:
    """``("0.25", "person=0.5")`` -> (0.25, {"person": 0.5})."""
    default, per_class = 0.25, {}
    for item in confs:
        name, _, value = str(item).rpartition("=")
        try:
            v = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not a number or CLASS=NUMBER", param_hint="--conf") from None
        if not 0.0 <= v <= 1.0:
            raise click.BadParameter(f"{item!r}: thresholds are between 0 and 1", param_hint="--conf")
        if name:
            per_class[name.strip()] = v
        else:
            default = v
    return default, per_class


def _post_options(confs, iou: float, classes: Optional[str], max_det: int, task: Optional[str], stride: int) -> Dict[str, Any]:
    conf, per_class = _parse_confs(confs)
    if not 0.0 <= iou <= 1.0:
        raise click.BadParameter("must be between 0 and 1", param_hint="--iou")
    if max_det < 1:
        raise click.BadParameter("must be >= 1", param_hint="--max-det")
    if stride < 1:
        raise click.BadParameter("must be >= 1 (1: every frame)", param_hint="--stride")
    opts: Dict[str, Any] = {"conf": conf, "iou": iou, "max_det": max_det}
    if per_class:
        opts["class_conf"] = per_class
    if classes:
        opts["classes"] = [c.strip() for c in classes.split(",") if c.strip()]
    if task:
        opts["task"] = task
    return opts


def _tuned_config(path: Optional[str], **given: Any) -> Tuple[Any, Tuple[Any, ...]]:
    """The config file and the knobs to pass: flags typed on the command line win, the rest come from the file."""
    if path is None:
        return None, tuple(given.values())
    from ..pipeline.config import PipelineConfig

    config = PipelineConfig.from_file(path)
    ctx = click.get_current_context()
    typed = {k: v if ctx.get_parameter_source(k) not in (None, click.core.ParameterSource.DEFAULT) else None
             for k, v in given.items()}
    knobs = {**config.knobs(), **{k: v for k, v in typed.items() if v is not None}}
    click.echo(f"config {path}: " + ", ".join(f"{k} {v}" for k, v in knobs.items()), err=True)
    return config, tuple(typed.values())


@click.command("run")
@click.argument("bundle", type=click.Path(exists=True), required=False)
@click.option("--source", "sources", multiple=True, required=True,
              help="Video file, image folder/glob, v4l2:///dev/video0 or index, csi://0, rtsp://..., gst://... (repeatable).")
@click.option("--sink", "sinks", multiple=True, help="display://0, file://out.mp4 or null:// (repeatable).")
@click.option("--uplink", default=None, help="Results uplink: http://..., mqtt://host:port/topic or file://results.jsonl.")
@click.option("--uplink-spool", default=None, type=click.Path(), help="Spool folder for the uplink [default: $EDGEINFER_SPOOL, else ~/.cache/edgeinfer/spool/<scheme>-<hash of the destination>: one spool per destination].")
@click.option("--max-frames", type=int, default=None, help="Stop each source after N frames.")
@click.option("--duration", type=float, default=None, help="Stop after S seconds.")
@click.option("--batch", type=int, default=1, show_default=True, help="Max micro-batch size.")
@click.option("--max-delay-ms", type=float, default=5.0, show_default=True, help="Max queue delay for a batch to fill.")
@click.option("--instances", default=None, help="Engine instances: a count, or names like gpu,dla0,dla1 or ort,ort.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime"]), default="auto", show_default=True,
              help="auto: the bundle's TensorRT engine for this device if built, else ONNX Runtime.")
@click.option("--fallback", type=click.Choice(["none", "onnxruntime"]), default="onnxruntime", show_default=True,
              help="Backend to switch to when the engine fails at run time.")
@click.option("--loop", is_flag=True, help="Replay file sources forever.")
@click.option("--sink-lossless", is_flag=True,
              help="For file sources, sinks wait instead of dropping frames (every frame written; inference may wait).")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the final stats (the --json object) to FILE, atomically.")
@click.option("--stats-json", "stats_json", type=click.Path(dir_okay=False), default=None, hidden=True,
              callback=_deprecated_stats_json, help="Deprecated alias of --stats.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the final stats as JSON on stdout; the start line and summary go to stderr.")
@click.option("--status-interval", type=float, default=1.0, show_default=True, help="Seconds between status lines (0: off).")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics, /healthz and /readyz on PORT.")
@click.option("--conf", "confs", multiple=True, default=("0.25",), show_default=True,
              help="Confidence threshold; repeat with CLASS=VALUE for a class's own (e.g. --conf 0.25 --conf person=0.5).")
@click.option("--iou", type=float, default=0.45, show_default=True, help="NMS IoU threshold.")
@click.option("--classes", default=None, help="Keep only these classes: comma list of names or ids (e.g. person,car).")
@click.option("--max-det", type=int, default=300, show_default=True, help="Most objects kept per frame.")
@click.option("--task", type=click.Choice(["detect", "segment", "pose", "obb", "classify", "generic"]), default=None,
              help="Override the task the model's metadata declares.")
@click.option("--stride", type=int, default=1, show_default=True, help="Process every Nth frame of each source.")
@click.option("--track", is_flag=True, help="Track objects (ByteTrack): a stable track_id per object and source.")
@click.option("--zones", type=click.Path(dir_okay=False), default=None,
              help="YAML with zones, counting lines and event rules per source (implies --track).")
@click.option("--record-events", type=click.Path(file_okay=False), default=None,
              help="Folder for event clips (pre/post-roll MP4 next to each event's JSON).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Tuned config (edgeinfer bench --write-config): batch, max delay, instances, queue size; flags given win.")
@fleet_options
def run(bundle: Optional[str], sources, sinks, uplink, uplink_spool, max_frames, duration, batch, max_delay_ms, instances,
        backend, fallback, loop, sink_lossless, stats_path, stats_json, as_json, status_interval, metrics_port, confs, iou,
        classes, max_det, task, stride, track, zones, record_events, config_path, fleet) -> None:
    """Run BUNDLE (a bundle directory or .onnx) over one or more sources.

    With --watch DIR, BUNDLE may be omitted (the newest valid bundle in DIR runs) and newer bundles
    delivered into DIR are hot-swapped in (docs/fleet.md). SIGTERM stops it like Ctrl-C.

    Example: edgeinfer run bundle/ --source clip.mp4 --sink file://out.mp4 --stats stats.json

    Analytics: --track --zones zones.yaml --record-events clips/ (see docs/analytics.md).
    """
    from ..pipeline.pipeline import Pipeline

    batch, max_delay_ms = _parse_batch(batch, max_delay_ms)
    config, (batch, max_delay_ms, instances) = _tuned_config(config_path, batch=batch, max_delay_ms=max_delay_ms,
                                                            instances=instances)
    fleet_run = FleetRun(bundle, fleet)
    stats_path = _stats_target(stats_path, stats_json)
    if stats_path:
        from ..fleet.signals import clean_stale_temps

        clean_stale_temps(stats_path)
    load_kwargs = {**_post_options(confs, iou, classes, max_det, task, stride), **fleet_run.load_kwargs()}
    if fallback == "onnxruntime" and backend == "auto":
        load_kwargs["fallback"] = "onnxruntime"  # also at load: an engine that will not deserialize
    if backend != "auto":
        load_kwargs["backend"] = backend
    p = Pipeline(fleet_run.bundle, sources=list(sources), sink=list(sinks) or None, uplink=uplink, uplink_spool=uplink_spool,
                 batch=batch, max_delay_ms=max_delay_ms, instances=instances, config=config,
                 fallback=None if fallback == "none" or backend == "onnxruntime" else fallback,
                 loop=loop, max_frames=max_frames, metrics_port=metrics_port, load_kwargs=load_kwargs,
                 collect_results=False, telemetry="auto", sink_lossless=sink_lossless, stride=stride,
                 tracker="bytetrack" if track or zones else None, zones=zones, record_events=record_events,
                 **fleet_run.pipeline_kwargs())
    click.echo(start_line(p.engines(), fleet_run.bundle, len(sources)), err=as_json)  # before any frame output
    interrupted: Optional[KeyboardInterrupt] = None
    try:
        p.start()
        fleet_run.start(p)
        _live_status(p, status_interval, duration)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (edgeinfer.fleet.signals.Terminated)
        interrupted = exc
    finally:
        fleet_run.stop()
        try:
            p.close(raise_error=interrupted is None)
        except KeyboardInterrupt as exc:  # a second signal during close: still print and write the stats
            interrupted = exc
    stats = {**engine_fields(p.engines()), **p.stats()}  # the model running at the end (after any hot swap)
    for line in summary_lines(stats) + fleet_run.summary_lines(stats):
        click.echo(line, err=as_json)
    if stats_path:
        write_json_atomic(stats_path, stats)
    if as_json:
        echo_json(stats)
    if interrupted is not None:
        raise interrupted
