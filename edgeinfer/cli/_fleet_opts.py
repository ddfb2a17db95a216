"""The fleet options of `edgeinfer run`: trust, watched folder, hot-swap health, metrics host (docs/fleet.md)."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional

import click

from ..errors import ConfigError

_OPTIONS = [
    click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, dir_okay=False),
                 help="Trusted public key (PREFIX.pub); repeatable. With any key (or EDGEINFER_TRUST), only signed bundles run."),
    click.option("--watch", "watch", type=click.Path(exists=True, file_okay=False), default=None,
                 help="Folder an OTA tool delivers bundles into: run the newest valid one, hot-swap to newer ones."),
    click.option("--watch-interval", type=float, default=1.0, show_default=True, help="Seconds between polls of --watch."),
    click.option("--keep", type=int, default=3, show_default=True, help="Bundles kept in --watch for rollback; older ones are deleted."),
    click.option("--device-profile", default=None,
                 help="This device's profile name: bundles without an entry for it are refused (default: detected)."),
    click.option("--health-frames", type=int, default=30, show_default=True,
                 help="Frames a swapped-in model must run without error before it is kept."),
    click.option("--health-timeout", type=float, default=20.0, show_default=True, help="Seconds to wait for --health-frames."),
    click.option("--health-latency-ratio", type=float, default=2.0, show_default=True,
                 help="Roll back when the new model's P95 exceeds the old one's times this (+5 ms)."),
    click.option("--shadow-frames", type=int, default=0, show_default=True,
                 help="Before a swap, compare detections of both models on the last N frames (0: off)."),
    click.option("--metrics-host", default="127.0.0.1", show_default=True,
                 help="Address for --metrics-port (/metrics, /healthz, /readyz); 0.0.0.0 lets a fleet's Prometheus scrape."),
]


def fleet_options(fn: Callable) -> Callable:
    """Add the fleet options; they reach the command as one ``fleet`` dict."""
    names = ("trust", "watch", "watch_interval", "keep", "device_profile", "health_frames", "health_timeout",
             "health_latency_ratio", "shadow_frames", "metrics_host")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["fleet"] = {name: kwargs.pop(name) for name in names}
        return fn(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


class FleetRun:
    """Resolves BUNDLE (or the newest valid bundle in --watch) and runs the watcher beside the pipeline."""

    def __init__(self, bundle: Optional[str], opts: Dict[str, Any]) -> None:
        from ..fleet.health import HealthPolicy
        from ..fleet.signals import install_sigterm
        from ..fleet.trust import TrustStore

        install_sigterm()  # SIGTERM = Ctrl-C: drain, finish the MP4, write stats (also as PID 1)
        self.opts = opts
        self.store = TrustStore.from_config(files=list(opts["trust"]))
        self.policy = HealthPolicy(frames=opts["health_frames"], timeout_s=opts["health_timeout"],
                                   latency_ratio=opts["health_latency_ratio"], shadow_frames=opts["shadow_frames"])
        self.watcher = None
        if opts["watch"]:
            from ..fleet.watch import BundleWatcher

            self.watcher = BundleWatcher(opts["watch"], interval=opts["watch_interval"], keep=opts["keep"],
                                         trust=self.store, device=self.device(), policy=self.policy,
                                         on_report=_echo_report)
            if bundle is None:
                bundle = str(self.watcher.newest_valid())
                click.echo(f"watching {opts['watch']}: starting with {os.path.basename(bundle)}", err=True)
        if bundle is None:
            raise ConfigError("no BUNDLE given", hint="pass a bundle path, or --watch DIR to run the newest bundle in DIR")
        self.bundle = bundle

    def device(self) -> Optional[str]:
        if self.opts["device_profile"]:
            return str(self.opts["device_profile"])
        from ..profiles import detect_current_device

        detected = detect_current_device()
        return detected.profile.name if detected is not None else None

    def pipeline_kwargs(self) -> Dict[str, Any]:
        return {"metrics_host": self.opts["metrics_host"], "shadow_frames": self.opts["shadow_frames"]}

    def summary_lines(self, stats: Dict[str, Any]) -> List[str]:
        """The model line of the final summary: which model ran last, and what the swaps did."""
        model = stats.get("model") or {}
        if not model.get("model_id"):
            return []
        line = f"model: {model['model_id']} (version {model.get('model_version')}"
        line += f", signed by {model['signer']})" if model.get("signer") else ")"
        swaps = model.get("swaps") or []
        if swaps:
            counts: Dict[str, int] = {}
            for swap in swaps:
                counts[swap["status"]] = counts.get(swap["status"], 0) + 1
            line += " | swaps: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return [line]

    def load_kwargs(self) -> Dict[str, Any]:
        return {"trust": self.store}

    def start(self, pipeline: Any) -> None:
        from ..fleet.sdnotify import SystemdNotifier

        self._notifier = SystemdNotifier(pipeline).start()  # Type=notify + WatchdogSec= (no-op elsewhere)
        if self.watcher is None:
            self._stop_notice = _watch_for_replacement(self.bundle, pipeline)
        if self.watcher is not None:
            self.watcher.pipeline = pipeline
            if self.watcher.active is None:
                from pathlib import Path

                from ..fleet.trust import manifest_sha256

                path = Path(self.bundle)
                self.watcher.active = (path, manifest_sha256(path) if path.is_dir() else "")
            self.watcher.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        notifier = getattr(self, "_notifier", None)
        if notifier is not None:
            notifier.stop()
        stop_notice = getattr(self, "_stop_notice", None)
        if stop_notice is not None:
            stop_notice.set()


def _echo_report(report: Any) -> None:
    tail = f": {report.reason}" if report.reason else ""
    frames = ", ".join(f"source {k} from frame {v}" for k, v in report.first_frames.items())
    click.echo(f"model swap {report.status}: {report.from_model_id} -> {report.to_model_id}"
               + (f" ({frames})" if frames and report.status == "committed" else "") + tail, err=True)


def _watch_for_replacement(bundle: str, pipeline: Any, interval: float = 5.0) -> Any:
    """Without --watch, say so (once) when the running bundle is re-packaged in place: it keeps the old model."""
    import logging
    import threading
    from pathlib import Path

    from ..fleet.trust import manifest_sha256

    path = Path(bundle)
    stop = threading.Event()
    if not path.is_dir():
        return stop
    try:
        started = manifest_sha256(path)
    except OSError:
        return stop

    def run() -> None:
        while not stop.wait(interval) and pipeline.running:
            try:
                now = manifest_sha256(path)
            except OSError:
                continue
            if now != started:
                logging.getLogger("edgeinfer.fleet").warning(
                    "bundle %s was replaced on disk (manifest %s -> %s); the old model keeps running. "
                    "Restart, or run with --watch DIR to hot-swap new bundles", path, started[:12], now[:12])
                return

    threading.Thread(target=run, name="fleet-replaced", daemon=True).start()
    return stop
