"""PNG plots for `edgeinfer bench` (matplotlib through _deps, Agg backend, written atomically)."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from .._deps import require
from ._atomic import temp_path_for


def _pyplot():
    mpl = require("matplotlib", feature="benchmark plots")
    mpl.use("Agg")
    return require("matplotlib.pyplot", feature="benchmark plots")


def _save(fig, path: str) -> str:
    tmp = temp_path_for(path)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def plot_sweep(result: Dict[str, Any], path: str, *, title: str = "") -> str:
    """P95 latency (median, bars: min-max over samples) vs throughput, or vs offered rate for the tuner, one line per
    (batch, delay, instances); the SLA as a horizontal line and the best point (the tuner's winning knee) circled."""
    plt = _pyplot()
    x_key = "offered_fps" if result.get("mode") == "tune" else "throughput_fps"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups: Dict[tuple, list] = {}
    for p in result["points"]:
        groups.setdefault((p["batch"], p["max_delay_ms"], p.get("instances") or ""), []).append(p)
    for (b, d, inst), pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda p: p[x_key] or 0.0)
        ys = [p["p95_ms"] for p in pts]
        spread = [p.get("p95_spread_ms") or [y, y] for p, y in zip(pts, ys)]
        ax.errorbar([p[x_key] for p in pts], ys, yerr=[[y - s[0] for y, s in zip(ys, spread)], [s[1] - y for y, s in zip(ys, spread)]],
                    marker="o", capsize=3, label=f"batch {b}, delay {d:g} ms" + (f", instances {inst}" if inst else ""))
    if result.get("sla_p95_ms") is not None:
        ax.axhline(result["sla_p95_ms"], color="red", linestyle="--", label=f"SLA p95 {result['sla_p95_ms']:g} ms")
    best = result.get("best")
    if best:
        ax.scatter([best[x_key]], [best["p95_ms"]], s=160, facecolors="none", edgecolors="black",
                   label="knee (best)" if x_key == "offered_fps" else "best")
    ax.set_xlabel("offered load (frames/s)" if x_key == "offered_fps" else "throughput (frames/s)")
    ax.set_ylabel("P95 latency (ms)")
    ax.set_yscale("log")
    ax.set_title(title or "latency vs throughput")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_scenarios(report: Dict[str, Any], path: str, *, sla: Optional[float] = None) -> str:
    """Per scenario: latency histogram (left) and latency over time (right)."""
    plt = _pyplot()
    names = list(report["scenarios"])
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.8 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        series = report["scenarios"][name].get("series") or []
        lat = [s[1] for s in series]
        t = [s[0] for s in series]
        axes[row][0].hist(lat, bins=40, color="tab:blue")
        axes[row][0].set_title(f"{name}: latency distribution")
        axes[row][0].set_xlabel("ms")
        axes[row][1].plot(t, lat, ".", markersize=2)
        axes[row][1].set_title(f"{name}: latency over time")
        axes[row][1].set_xlabel("arrival (s)")
        axes[row][1].set_ylabel("ms")
        if sla is not None:
            axes[row][0].axvline(sla, color="red", linestyle="--")
            axes[row][1].axhline(sla, color="red", linestyle="--")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
