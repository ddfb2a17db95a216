"""`Pipeline`: sources → capture threads → frame hub → inference workers → re-order → sinks/uplink/you.

Example:
    >>> import edgeinfer
    >>> with edgeinfer.Pipeline("bundle/", sources=["clip.mp4"], sink="file://out.mp4") as p:  # doctest: +SKIP
    ...     for result in p:
    ...         print(result.source_id, result.frame_index, len(result.detections))
    >>> edgeinfer.Pipeline(model, sources=["rtsp://cam/1"], on_result=print).run(timeout=60)  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Iterator, List, Optional

from ..errors import ConfigError, EdgeInferError
from ..telemetry.latency import LatencyRecorder, RateMeter
from ._fleet import FleetMixin
from ._lifecycle import deferred_sigint, make_telemetry, make_uplink, parse_sources
from .analytics_hook import make_analytics, merge_post_options
from .capture import CaptureWorker, ReconnectPolicy, SourceEvent
from .config import PipelineConfig, pipeline_knobs
from .hub import FrameHub
from .infer import Collector, InferWorker
from .models import fallback_factory, frame_allocator, resolve_models
from .results import DropQueue, FrameResult
from .sinks import SinkRunner, make_sink
from .stats import build_stats, status_line
from .uri import describe_target

log = logging.getLogger(__name__)


class Pipeline(FleetMixin):
    """Run a model over one or more sources with bounded queues, micro-batching and stats.

    Args:
        model: a loaded Model (``infer_batch``, ``info``), a list of them (one engine instance each),
            or a bundle/ONNX path (loaded with ``edgeinfer.load``; see ``instances``).
        sources: URIs (video file, image folder/glob, ``v4l2:///dev/video0`` or an index, ``csi://0``,
            ``rtsp://…``, ``gst://…``), or a dict source id → URI.
        sink: ``display://0``, ``file://out.mp4``, ``rtsp://@:8554/live``, ``images://DIR``, ``null://``, a callable ``fn(result, frame)``, or a list.
        uplink: an ``Uplink`` (anything with ``put``) or its URL (then created with ``uplink_spool``).
        on_result: callback style; called with each FrameResult in order, in a delivery thread.
        batch / max_delay_ms: dynamic micro-batching (Triton semantics). Default 1 and 5 ms (or the config's).
        config: a tuned config (``edgeinfer bench --write-config``): a JSON path, a mapping or a PipelineConfig; it sets
            batch, max_delay_ms, instances and queue_size where those arguments are not given (docs/pipeline.md).
        instances: with a model path, a count or names such as ``"gpu,dla0,dla1"``.
        fallback: ``"onnxruntime"``, a Model or a factory used when an instance fails at run time.
        reconnect: watchdog/backoff policy for live sources. loop: replay files forever (soak tests).
        max_frames: stop each source after this many frames. return_frames: attach a copy of each frame.
        status_interval: log a status line (INFO) every N seconds. metrics_port: serve Prometheus text on it.
        telemetry: ``"auto"`` (jtop → sysfs → none), None/False, or a JetsonTelemetry.
        sink_lossless: sinks wait for file sources instead of dropping (every frame written; inference may wait).
        on_event: called with each SourceEvent (connecting, connected, lost, reconnecting, ended, ...).
        collect_results: False when only sinks/uplink consume results (nobody iterates): nothing is queued for you.
        tracker: ``"bytetrack"``: a stable ``track_id`` per object and source. zones: zones/lines/rules (YAML path
            or dict, docs/analytics.md); events go to the uplink as their own records and to ``on_analytics_event``.
        record_events: folder for event clips (pre/post-roll MP4). analytics: a ready ``edgeinfer.analytics.Analytics``
            (instead of tracker/zones/record_events). stride: process every Nth frame of each source.
        conf, iou, max_det, classes, class_conf, task: post-processing options for a model path (``edgeinfer.load``).
        shadow_frames: keep copies of the last N frames and results for a swap's shadow comparison (0: off).
        overlap: pre-process the next batch and post-process the previous one while the engine runs (models
            loaded with ``edgeinfer.load``; docs/pipeline.md "Overlap and frame slots"). False: one thread per
            instance does all three in turn.

    Hot swap, model identity and readiness (``swap_model``, ``model_id``, ``readiness``): see FleetMixin.
    """

    def __init__(self, model: Any, *, sources, sink=None, uplink=None, on_result: Optional[Callable[[FrameResult], Any]] = None,
                 batch: Optional[int] = None, max_delay_ms: Optional[float] = None, instances=None, fallback=None,
                 reconnect: Optional[ReconnectPolicy] = None, loop: bool = False, max_frames: Optional[int] = None,
                 return_frames: bool = False, queue_size: Optional[int] = None, sink_queue: int = 8, result_queue: int = 16,
                 status_interval: Optional[float] = None, metrics_port: Optional[int] = None,
                 metrics_host: str = "127.0.0.1", telemetry: Any = "auto", uplink_spool: Optional[str] = None,
                 load_kwargs: Optional[dict] = None, draw: bool = True, join_timeout: float = 5.0,
                 collect_results: bool = True, sink_lossless: bool = False,
                 on_event: Optional[Callable[[SourceEvent], Any]] = None, shadow_frames: int = 0, tracker: Optional[str] = None,
                 zones: Any = None, record_events: Optional[str] = None, analytics: Any = None, stride: int = 1,
                 on_analytics_event: Optional[Callable[[Any], Any]] = None, overlap: bool = True, config: Any = None,
                 **post_options: Any) -> None:
        cfg = PipelineConfig.load(config) if config is not None else None  # explicit arguments win over the file
        knobs = pipeline_knobs(cfg, batch=batch, max_delay_ms=max_delay_ms, instances=instances, queue_size=queue_size)
        batch, max_delay_ms, instances, queue_size = (knobs[k] for k in ("batch", "max_delay_ms", "instances", "queue_size"))
        if int(batch) < 1:
            raise ConfigError(f"batch={batch} must be at least 1", hint="use batch=1 for lowest latency")
        if float(max_delay_ms) < 0:
            raise ConfigError(f"max_delay_ms={max_delay_ms} must be >= 0", hint="use e.g. max_delay_ms=5")
        self.max_batch, self.max_delay = int(batch), float(max_delay_ms) / 1000.0
        self._source_specs = parse_sources(sources)
        self._stride = int(stride)
        load_kwargs = merge_post_options(load_kwargs, post_options, stride=self._stride, model=model)
        self._describe = {sid: describe_target(spec) for sid, spec in self._source_specs.items()}
        self._reconnect = reconnect or ReconnectPolicy()
        self._loop, self._max_frames, self._return_frames = loop, max_frames, return_frames
        self._queue_size, self._join_timeout = max(1, int(queue_size)), float(join_timeout)
        self._status_interval, self._on_result = status_interval, on_result
        self._collect = bool(collect_results) or on_result is not None
        self._sink_lossless = bool(sink_lossless)
        self._on_event_cb = on_event
        self._overlap = bool(overlap)
        self._stop_requested = threading.Event()
        # Sinks first (cheap checks such as "no display"), then models and uplink, closed again on failure.
        sinks = [] if sink is None else [make_sink(s, multi_source=len(self._source_specs) > 1, on_quit=self._stop_requested.set)
                                         for s in (sink if isinstance(sink, (list, tuple)) else [sink])]
        self._instances, self._owned_models, model_path = resolve_models(model, instances=instances, load_kwargs=load_kwargs)
        if cfg is not None:
            cfg.warn_if_stale(self._instances[0][1])
        try:
            self._fallback = fallback_factory(fallback, model_path=model_path, load_kwargs=load_kwargs)
            self._fallback_spec = fallback
            self._uplink, self._owns_uplink = make_uplink(uplink, uplink_spool)
            self._analytics = make_analytics(analytics, tracker=tracker, zones=zones, record_events=record_events,
                                             stride=self._stride, fps_of=self._source_fps, on_event=on_analytics_event,
                                             source_ids=list(self._source_specs))
        except BaseException:
            for m in self._owned_models:
                m.close()
            raise
        self._init_fleet(shadow_frames=shadow_frames, load_kwargs=load_kwargs, model_path=model_path)
        self._hub = FrameHub()
        self._collector = Collector(self._emit)
        self._results = DropQueue(capacity=result_queue)
        self._sink = SinkRunner(sinks, capacity=sink_queue, on_error=self._fail, draw=draw) if sinks else None
        self._e2e, self._out_fps = LatencyRecorder(), RateMeter()
        self._events: deque = deque(maxlen=200)
        self._failovers: List[Dict[str, Any]] = []
        self._leaked: List[str] = []
        self._error: Optional[BaseException] = None
        self._error_raised = False
        self._lock = threading.Lock()
        self._captures: List[CaptureWorker] = []
        self._workers: List[InferWorker] = []
        self._threads: List[threading.Thread] = []
        self._started_mono = 0.0
        self._started = self._closed = False
        self._finished = threading.Event()
        self._telemetry = make_telemetry(telemetry)
        self._telemetry_last: Dict[str, Any] = {}
        self._metrics_port, self._metrics_host, self._metrics = metrics_port, metrics_host, None

    # -- construction helpers ------------------------------------------------------------------
    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "Pipeline":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(raise_error=exc_type is None)

    def start(self) -> "Pipeline":
        """Start every thread (idempotent)."""
        if self._started:
            return self
        if self._closed:
            raise ConfigError("this pipeline was closed", hint="create a new Pipeline")
        self._started, self._started_mono = True, time.perf_counter()
        # frames held at once: the hub's queue, per instance up to 4 chunks (pre-processed, running, finishing and one
        # waiting for a staging slot when overlapped), the sink's queue, and a few in capture and delivery
        per_instance = 4 if self._overlap else 1
        slots = (self._queue_size + self.max_batch * per_instance * len(self._instances)
                 + (self._sink.queue._capacity if self._sink else 0) + 3)
        for sid, spec in self._source_specs.items():
            self._hub.add_source(sid, live=spec.live, capacity=self._queue_size)
            self._captures.append(CaptureWorker(sid, spec, self._hub, policy=self._reconnect, pool_slots=slots,
                                                on_event=self._on_event, on_error=self._fail, loop=self._loop,
                                                max_frames=self._max_frames, stride=self._stride,
                                                allocate=frame_allocator(m for _, m in self._instances)))
        for name, model in self._instances:
            self._workers.append(InferWorker(name, model, self._hub, self._collector, max_batch=self.max_batch,
                                             max_delay=self.max_delay, fallback=self._fallback, on_error=self._fail,
                                             on_failover=self._on_failover, gate=self._gate, overlap=self._overlap))
        if self._metrics_port is not None:
            from ..telemetry.prometheus import MetricsServer

            try:
                self._metrics = MetricsServer(self.stats, port=self._metrics_port, host=self._metrics_host,
                                              ready_fn=self.readiness).start()
            except OSError as exc:
                self.close(raise_error=False)
                raise ConfigError(f"cannot serve metrics on {self._metrics_host}:{self._metrics_port}: {exc}",
                                  hint="pick another --metrics-port (0 picks a free one)") from exc
        if self._sink:
            self._sink.start()
        for w in self._workers:
            w.start()
        for c in self._captures:
            c.start()
        self._spawn(self._monitor, "monitor")
        if self._on_result is not None:
            self._spawn(self._deliver, "deliver")
        return self

    def _spawn(self, fn, name: str) -> None:
        t = threading.Thread(target=fn, name=f"pipeline-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    @property
    def running(self) -> bool:
        return self._started and not self._finished.is_set()

    @property
    def metrics_url(self) -> Optional[str]:
        """Where the Prometheus endpoint listens (``metrics_port=0`` picks a free port)."""
        return f"http://{self._metrics_host}:{self._metrics.port}/metrics" if self._metrics is not None else None

    @property
    def error(self) -> Optional[BaseException]:
        return self._error

    # -- thread callbacks -----------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
                log.error("pipeline stopping: %s", exc)
        self._shutdown_flow()

    def _on_event(self, event: SourceEvent) -> None:
        event = dataclasses.replace(event, model_id=self.model_id)  # traceability: the model running then
        self._events.append(event)
        if self._on_event_cb is not None:
            try:
                self._on_event_cb(event)
            except Exception:  # a faulty event hook must not take a camera down
                log.exception("on_event callback failed for %s", event)

    def _on_failover(self, info: Dict[str, Any]) -> None:
        self._failovers.append(info)
        log.error("failover: instance %s switched from %s to %s after %s", info["instance"], info["from"], info["to"], info["error"])

    def _emit(self, result: FrameResult, ref) -> None:
        """Called by the collector in capture order, per source."""
        try:
            self._e2e.record(result.latency_ms / 1000.0)
            self._out_fps.tick()
            if self._return_frames:
                result.frame = ref.array.copy()
            self._remember_frame(result, ref)
            events = self._analytics.apply(result, ref.array) if self._analytics is not None else ()
            if self._uplink is not None:
                # Uplink.put never blocks (store-and-forward), so it sits before the lossy sink queue: nothing is lost.
                self._uplink.put(result.to_record())
                for event in events:
                    self._uplink.put(event.to_record())
            lossless = not self._source_specs[result.source_id].live
            if self._sink is not None:
                self._sink.offer(result, ref.retain() if self._sink.needs_frame else None,
                                 lossless=lossless and self._sink_lossless, stop=self._stop_requested)
            while self._collect and not self._stop_requested.is_set() and self._error is None:
                if self._results.put(result, lossless=lossless, timeout=0.25):
                    break
        finally:
            ref.release()

    def _deliver(self) -> None:
        try:
            for result in self._iter_results():
                self._on_result(result)
        except BaseException as exc:  # a failing callback stops the pipeline with its error
            self._fail(exc)

    def _monitor(self) -> None:
        next_status = time.perf_counter() + (self._status_interval or 0)
        next_tel = 0.0
        while not self._finished.is_set():
            if self._workers and not any(w.alive for w in self._workers):
                self._results.close()
                if self._sink:
                    self._sink.close()
                self._finished.set()
                break
            now = time.perf_counter()
            try:
                for cap in self._captures:
                    if cap.stalled(now):
                        cap.abandon()
                if self._stop_requested.is_set():
                    self._shutdown_flow()
                if self._status_interval and now >= next_status:
                    log.info("%s", status_line(self.stats()))
                    next_status = now + self._status_interval
            except Exception as exc:  # the monitor must survive to close the queues; the error goes to the caller
                self._fail(exc)
            if self._telemetry is not None and now >= next_tel:
                next_tel = now + 1.0
                try:
                    self._telemetry_last = self._telemetry.sample()
                except Exception as exc:  # telemetry is best effort: never stop inference for it
                    log.warning("telemetry sampling failed (%r); switching it off", exc)
                    self._telemetry = None
            time.sleep(0.05)

    def _telemetry_snapshot(self) -> Dict[str, Any]:
        snap = dict(self._telemetry_last) if self._telemetry_last else {"available": False, "source": "not available"}
        power = snap.get("power_w")
        fps = self._out_fps.rate()
        snap["fps_per_watt"] = round(fps / power, 3) if power else None
        return snap

    def _shutdown_flow(self) -> None:
        """Stop producing: captures stop, the hub closes, workers drain out."""
        self._stop_requested.set()
        for cap in self._captures:
            cap.stop()
        self._hub.close()
        for w in self._workers:
            w.stop()

    # -- consumption ---------------------------------------------------------------------------
    def _iter_results(self) -> Iterator[FrameResult]:
        while True:
            try:
                yield self._results.get(timeout=0.25)
            except TimeoutError:
                continue
            except EOFError:
                return

    def __iter__(self) -> Iterator[FrameResult]:
        """Yield results in capture order per source until every source ends or close() is called."""
        if self._on_result is not None or not self._collect:
            raise ConfigError("results go to on_result (or collect_results=False); nothing to iterate",
                              hint="iterate a Pipeline made without on_result=, or call run()")
        self.start()
        yield from self._iter_results()
        self._raise_pending()

    def run(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Run until the sources end (or ``timeout`` seconds), then close; returns the final stats."""
        self.start()
        deadline = None if timeout is None else time.perf_counter() + timeout
        try:
            while not self._finished.wait(0.1):
                if self._on_result is None:
                    for _ in self._results.drain():
                        pass
                if deadline is not None and time.perf_counter() >= deadline:
                    break
        finally:
            self.close()
        return self.stats()

    def stats(self) -> Dict[str, Any]:
        """Everything measured so far: latencies (P50/P95/P99), FPS, queues, drops, reconnects, failover, telemetry."""
        stats = build_stats(self)
        if self._analytics is not None:
            stats["analytics"] = self._analytics.stats()
        return stats

    def _source_fps(self, source_id: str) -> float:
        for cap in self._captures:
            if cap.source_id == source_id:
                return cap.nominal_fps
        return 0.0

    def _raise_pending(self) -> None:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error

    def close(self, *, raise_error: bool = True) -> None:
        """Stop every thread (each join bounded by ``join_timeout``), close sinks, uplink and owned models.

        Re-raises the first error any thread hit, unless it was raised already.
        """
        if self._closed:
            if raise_error:
                self._raise_pending()
            return
        self._closed = True
        with deferred_sigint() as interrupted:
            self._close_all()
        if interrupted:
            from ..fleet.signals import redeliver

            redeliver(interrupted)
        if raise_error:
            self._raise_pending()

    def _close_all(self) -> None:
        self._shutdown_flow()
        deadline = time.perf_counter() + self._join_timeout
        joinables = [(f"capture-{c.source_id}", c.join) for c in self._captures] + [(f"infer-{w.name}", w.join) for w in self._workers]
        for name, join in joinables:
            if not join(max(0.05, deadline - time.perf_counter())):
                self._leaked.append(name)
        self._collector.discard()
        self._results.close()
        if self._sink:
            self._sink.close()
            if not self._sink.join(max(0.05, deadline - time.perf_counter())):
                self._leaked.append("sink")
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(max(0.05, deadline - time.perf_counter()))
                if t.is_alive():
                    self._leaked.append(t.name)
        self._finished.set()
        if self._leaked:
            log.warning("threads still running after close(): %s (daemon threads; they end with the process)", self._leaked)
        self._release_resources()

    def _release_resources(self) -> None:
        errors: List[BaseException] = []
        steps = []
        if self._sink:
            steps.append(self._sink.close_sinks)
        if self._analytics is not None:
            steps.append(self._analytics.close)
        if self._metrics is not None:
            steps.append(self._metrics.stop)
        if self._owns_uplink:
            steps.append(lambda: self._uplink.close(timeout=2.0))
        if self._telemetry is not None and hasattr(self._telemetry, "close"):
            steps.append(self._telemetry.close)
        for m in self._owned_models + [w.model for w in self._workers if w.failed_over]:
            if hasattr(m, "close"):
                steps.append(m.close)
        for step in steps:
            try:
                step()
            except Exception as exc:  # release everything even when one part fails; keep the first error
                errors.append(exc)
        if errors and self._error is None:
            self._error = errors[0] if isinstance(errors[0], EdgeInferError) else errors[0]
