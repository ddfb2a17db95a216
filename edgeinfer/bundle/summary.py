"""A stable, JSON-ready summary of a bundle: what `edgeinfer inspect --json` prints.

The shape is documented in docs/packaging.md ("inspect --json"); keys are only ever added.
Device-side code: Python 3.8-clean.

Example:
    >>> from edgeinfer.bundle import open_bundle
    >>> s = summarize(open_bundle("out/shapes.bundle"))                  # doctest: +SKIP
    >>> s["devices"]["orin-nx-16gb"]["placement"]["decision"]             # doctest: +SKIP
    'gpu'
"""
from __future__ import annotations

from typing import Any, Dict, List

from .reader import Bundle

SUMMARY_VERSION = 1


def summarize(bundle: Bundle) -> Dict[str, Any]:
    """Model, artifacts, and per device: precision, JetPack, placement, accuracy, recipes, engines."""
    m = bundle.manifest
    return {
        "summary_version": SUMMARY_VERSION,
        "bundle": str(bundle.archive or bundle.root),
        "schema_version": m["schema_version"],
        "edgeinfer_version": m["edgeinfer_version"],
        "created": m["created"],
        "model": _model(m["model"]),
        "artifacts": _artifacts(bundle),
        "devices": {name: _device(bundle, name) for name in bundle.devices},
    }


def _model(model: Dict[str, Any]) -> Dict[str, Any]:
    info = model.get("info", {})
    return {
        "name": model.get("name"), "source_sha256": model.get("source_sha256"), "task": info.get("task"),
        "output_layout": info.get("output_layout"), "inputs": info.get("inputs", []), "outputs": info.get("outputs", []),
        "class_names": {str(k): v for k, v in (model.get("class_names") or {}).items()},
    }


def _artifacts(bundle: Bundle) -> List[Dict[str, Any]]:
    users: Dict[str, List[str]] = {}
    for name in bundle.devices:
        for kind, rel in bundle.device(name).artifacts.items():
            users.setdefault(rel, []).append(f"{name}:{kind}")
    out = []
    for rel, digest in sorted(bundle.manifest["checksums"].items()):
        if rel in users:
            size = (bundle.root / rel).stat().st_size
            out.append({"path": rel, "sha256": digest, "size_bytes": size, "used_by": users[rel]})
    return out


def _device(bundle: Bundle, name: str) -> Dict[str, Any]:
    entry = bundle.device(name)
    jp = entry.jetpack
    return {
        "display_name": entry.profile.get("display_name", name),
        "precision": entry.precision,
        "jetpack": {k: jp.get(k) for k in ("jetpack", "l4t", "tensorrt")},
        "artifacts": dict(entry.artifacts),
        "placement": placement_summary(entry.placement),
        "accuracy": entry.accuracy,
        "calibration": entry.calibration,
        "recipes": {key: {"tensorrt": r.get("tensorrt"), "dla_core": r.get("dla_core"),
                          "supported_by_edgeinfer_build": r.get("supported_by_edgeinfer_build"),
                          "edgeinfer_build": r.get("edgeinfer_build"), "trtexec": r.get("trtexec")}
                    for key, r in entry.recipes.items()},
        "engines": [_engine(e, entry.placement) for e in entry.engines],
    }


def placement_summary(plan: Dict[str, Any]) -> Dict[str, Any]:
    """Counts and the top reasons of a PlacementPlan dict (no per-node list)."""
    summary = plan.get("summary") or {}
    return {
        "decision": plan.get("decision"), "dla_core": plan.get("dla_core"), "requested": plan.get("requested"),
        "reason": plan.get("reason"), "trt_version": plan.get("trt_version"),
        "dla_nodes": summary.get("dla", 0), "gpu_nodes": summary.get("gpu", 0), "folded_nodes": summary.get("folded", 0),
        "dla_subgraphs": plan.get("dla_subgraphs", 0), "transitions": plan.get("transitions", 0),
        "dla_flops_share": plan.get("dla_flops_share", 0.0), "top_reasons": summary.get("top_reasons", []),
        "warnings": plan.get("warnings", []),
    }


def _engine(record: Dict[str, Any], plan: Dict[str, Any]) -> Dict[str, Any]:
    summary = plan.get("summary") or {}
    static = {"decision": plan.get("decision"), "dla_core": plan.get("dla_core"), "dla": summary.get("dla", 0),
              "gpu": summary.get("gpu", 0), "dla_subgraphs": plan.get("dla_subgraphs", 0)}
    built = record.get("placement") if isinstance(record.get("placement"), dict) else {}
    return {
        "path": record.get("path"), "sha256": record.get("sha256"), "size_bytes": record.get("size_bytes"),
        "key": record.get("key"), "tensorrt_version": record.get("tensorrt_version"), "built_at": record.get("built_at"),
        "placement": {"static": static, "actual": built.get("actual"), "differences": built.get("differences", []),
                      "not_reported": len(built.get("not_reported", []))},
    }
