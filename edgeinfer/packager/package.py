"""`package_model`: model file -> ONE bundle for one or more devices, sharing identical artifacts.

Steps: resolve devices and per-device settings (fail fast) -> ingest (ONNX or Ultralytics .pt)
-> static DLA placement per device -> INT8 (calibration once, Q/DQ ONNX once, a TensorRT
calibration cache per TensorRT version) and/or FP16 ONNX -> build recipes per JetPack line ->
write the bundle atomically -> optionally build engines (needs TensorRT, i.e. on the device).

Example:
    >>> from edgeinfer.packager import package_model
    >>> package_model("shapes.onnx", devices="orin-nx-16gb,orin-nano-8gb", precision="int8",
    ...               calib="data/images/val", out="out/shapes.bundle")        # doctest: +SKIP
    PosixPath('out/shapes.bundle')
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..bundle import BundleWriter
from ..errors import BundleError, QuantizeError
from ..placement import plan_placement
from .int8 import Int8Artifacts, make_fp16_artifact, make_int8_artifacts, measure_fp16
from .targets import CALIB_METHODS, Target, default_calib_method, resolve_target
from .verify import verification_step

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
Report = Callable[[str], None]


def package_model(model_path: str | Path, *, devices: str | Sequence[str], precision: str | None = None,
                  calib: str | Path | None = None, calib_method: str | None = None, val: str | Path | None = None,
                  accuracy_budget: float | None = None, accept_unmeasured: bool = False, dla: str | int | None = None, imgsz: Any = None,
                  batch: int = 1, dynamic: bool = False, jetpack: str | None = None, out: str | Path | None = None,
                  force: bool = False, archive: bool = False, build: bool = False, verify: bool | None = None,
                  allow_parser_errors: bool = False, preprocess: Any = None, progress: Progress | None = None,
                  sign: str | Path | None = None, report: Report | None = None) -> Path:
    """Package ``model_path`` for ``devices`` into one bundle and return its path.

    Args:
        devices: profile names or families ("orin-nx-16gb,orin-nano-8gb", "orin").
        precision: fp16 | int8 | best | None (each profile's default).
        calib: calibration images (dir, glob, video or .npy); required for INT8.
        calib_method: minmax (default, DLA included) | percentile | entropy.
        val: labelled validation set (YOLO layout / data.yaml) for the accuracy report and budget.
        accuracy_budget: INT8 budget in mAP50-95 points below FP32 with ``val`` (default 1.0); without
            labels INT8 must agree with FP32 on held-out calibration images (edgeinfer.quantize.gate).
        accept_unmeasured: ship INT8 even when the gate cannot measure it (too few reference boxes);
            the report then says ``measured: false``.
        dla: auto | off | 0 | 1 | None (each profile's default).
        jetpack: target JetPack line for placement/calibration cache (default: per device, see targets).
        out: bundle directory (or .tar with ``archive``); default ``<model stem>.bundle`` here.
        build: build engines into the bundle right away (needs TensorRT).
        verify: check every ONNX with NVIDIA's parser before writing (edgeinfer.packager.verify); None = when
            TensorRT or TensorRT-RTX is importable. ``allow_parser_errors`` writes a rejected bundle anyway.
        preprocess: the model's pre-processing where it cannot be read from the model (non-Ultralytics models):
            ``"imagenet resize=crop"``, ``{"mean": (0.5,) * 3, "std": (0.5,) * 3, "color": "BGR"}`` or a
            PreprocessSpec; stored in the bundle and applied by the runtime (docs/packaging.md).
        sign: Ed25519 private key (``edgeinfer keygen``) to sign the finished bundle with (edgeinfer.fleet).
        progress: called as ``progress(label, done, total)`` during calibration and accuracy steps.
        report: called with one line per decision (device resolution, placement, artifacts).
    """
    say = report or (lambda line: log.info("%s", line))
    targets = _resolve(devices, precision=precision, dla=dla, jetpack=jetpack, say=say)
    dest = _destination(model_path, out, archive=archive, force=force)
    _check_calibration_inputs(targets, calib, calib_method)
    check = verification_step(verify=verify, allow_errors=allow_parser_errors, say=say)
    if sign is not None:
        from ..fleet.keys import load_private_key

        load_private_key(sign)  # a bad key fails now, not after minutes of calibration
    with tempfile.TemporaryDirectory(prefix="edgeinfer-package-") as work_dir:
        work = Path(work_dir)
        model = _ingest(model_path, imgsz=imgsz, batch=batch, dynamic=dynamic, preprocess=preprocess, work=work,
                        say=say)
        plans = {t.name: _plan(model.onnx_path, t, say) for t in targets}
        int8, targets = _int8(model, targets, plans, calib=calib, calib_method=calib_method, val=val,
                              budget=accuracy_budget, accept_unmeasured=accept_unmeasured, work=work,
                              progress=progress, say=say)
        fp16 = fp16_report = None
        if any(t.precision == "fp16" for t in targets):
            fp16 = make_fp16_artifact(model, work)
            fp16_report = measure_fp16(model, fp16, val=val, progress=progress)
        _write_bundle(dest, model, targets, plans, int8, fp16, fp16_report, force=force, archive=archive, check=check)
    say(f"wrote {dest}")
    if build:
        from ..engine import build_engines  # needs TensorRT: only imported when asked to build

        build_engines(dest)
    if sign is not None:
        from ..fleet.trust import sign_bundle

        record = sign_bundle(dest, sign)
        say(f"signed {dest} with key {record['key_id']}")
    return dest


def _int8(model: Any, targets: list[Target], plans: dict[str, Any], *, calib: Any, calib_method: str | None,
          val: Any, budget: float | None, accept_unmeasured: bool, work: Path, progress: Progress | None, say: Report
          ) -> tuple[Int8Artifacts | None, list[Target]]:
    """INT8 artifacts for the INT8 targets; with --precision best a missed budget falls back to FP16."""
    wanted = [t for t in targets if t.precision == "int8"]
    if not wanted:
        return None, targets
    from ..quantize.cache_ranges import dla_nodes_of

    method = calib_method or default_calib_method(plans)
    why = "" if calib_method else " (default; the DLA cache header still names EntropyCalibration2)"
    say(f"INT8: calibration method {method}{why}")
    try:
        artifacts = make_int8_artifacts(model, calib=calib, method=method, val=val, budget=budget,
                                        accept_unmeasured=accept_unmeasured,
                                        dla_nodes=dla_nodes_of(plans[t.name] for t in wanted),
                                        trt_versions=_cache_versions(wanted), work=work, progress=progress)
    except QuantizeError as exc:
        if not all(t.best for t in wanted) or "budget" not in exc.message:
            raise
        say(f"INT8 missed the accuracy budget; --precision best falls back to FP16 ({exc.message})")
        return None, [replace(t, precision="fp16") if t.precision == "int8" else t for t in targets]
    if artifacts.excluded:
        say(f"INT8: {len(artifacts.excluded)} sensitive Conv layer(s) kept in float to hold the accuracy budget")
    return artifacts, targets


def _cache_versions(wanted: list[Target]) -> set[str]:
    """One calibration cache per TensorRT version any INT8 recipe of these devices builds with."""
    from ..quantize.calib_cache import implicit_int8_versions

    return {t.jetpack.tensorrt for t in wanted} | {v for t in wanted for v in implicit_int8_versions(t.profile)}


def _resolve(devices: Any, *, precision: Any, dla: Any, jetpack: Any, say: Report) -> list[Target]:
    from ..profiles import resolve_devices
    from ..profiles.registry import explain_resolution

    for term, names in explain_resolution(devices):
        if [term] != names:
            say(f"devices: {term} -> {', '.join(names)}")
    targets = [resolve_target(p, precision=precision, dla=dla, jetpack=jetpack) for p in resolve_devices(devices)]
    for t in targets:
        say(f"{t.name}: {t.precision}, --dla {t.dla}, JetPack {t.jetpack.jetpack} / TensorRT {t.jetpack.tensorrt} "
            f"({t.jetpack_reason})")
    return targets


def _destination(model_path: Any, out: Any, *, archive: bool, force: bool) -> Path:
    dest = Path(out) if out is not None else Path(f"{Path(model_path).stem}.bundle" + (".tar" if archive else ""))
    if dest.exists() and not force:
        raise BundleError(f"{dest} already exists", hint="pass --force to replace it, or choose another -o")
    return dest


def _check_calibration_inputs(targets: list[Target], calib: Any, method: Any) -> None:
    if method is not None and method not in CALIB_METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(CALIB_METHODS)}")
    int8 = [t.name for t in targets if t.precision == "int8"]
    if not int8:
        return
    if calib is None:
        raise QuantizeError(f"INT8 for {', '.join(int8)} needs calibration images, but no --calib was given",
                            hint="pass --calib DIR (images, a glob, a video or .npy; ~100-500 representative frames) "
                                 "or use --precision fp16")
    text = str(calib)
    if not any(ch in text for ch in "*?[") and not Path(text).exists():
        raise QuantizeError(f"calibration set {text} does not exist", hint="check the --calib path")


def _ingest(model_path: Any, *, imgsz: Any, batch: int, dynamic: bool, preprocess: Any, work: Path,
            say: Report) -> Any:
    from ..model import load_model

    model = load_model(model_path, imgsz=imgsz, batch=batch, dynamic=dynamic, preprocess=preprocess,
                       workdir=work / "model")
    info = model.info
    pre = info.preprocess
    say(f"model: {info.source} ({info.task}, layout {info.output_layout}, input {info.input.shape}, "
        f"{info.num_classes} classes)")
    say(f"pre-processing: {pre.layout}, {pre.color}, resize {pre.resize}, scale {pre.scale:.6g}, "
        f"mean {list(pre.mean)}, std {list(pre.std)}" + (" (declared)" if preprocess is not None else ""))
    return model


def _plan(onnx_path: Path, target: Target, say: Report) -> Any:
    plan = plan_placement(onnx_path, profile=target.profile, trt_version=target.jetpack.tensorrt, dla=target.dla,
                          precision=target.precision)
    counts = plan.counts()
    say(f"{target.name}: placement {plan.decision.upper()} ({counts['dla']} DLA / {counts['gpu']} GPU nodes): {plan.reason}")
    for warning in plan.warnings:
        say(f"{target.name}: warning: {warning}")
    return plan


def _write_bundle(dest: Path, model: Any, targets: list[Target], plans: dict[str, Any], int8: Int8Artifacts | None,
                  fp16: Path | None, fp16_report: dict[str, Any] | None, *, force: bool, archive: bool,
                  check: Callable[[BundleWriter], None] | None = None) -> None:
    info = model.info
    shapes = {t.name: list(t.shape) for t in info.inputs}
    with BundleWriter(dest, force=force, archive=archive) as writer:
        writer.set_model(info=info.to_dict(), name=Path(info.source.split(":")[-1]).name,
                         source_sha256=model.source_sha256)
        for t in targets:
            artifacts = {"onnx": writer.add_artifact(model.onnx_path)}
            accuracy: dict[str, Any] = {"precision": t.precision, "measured": False}
            calibration: dict[str, Any] = {}
            if t.precision == "int8" and int8 is not None:
                artifacts["qdq_onnx"] = writer.add_artifact(int8.qdq_path)
                artifacts["calib_cache"] = writer.add_artifact(int8.caches[t.jetpack.tensorrt])
                accuracy, calibration = dict(int8.report, precision="int8"), dict(int8.calibration)
            if t.precision == "fp16" and fp16 is not None:
                artifacts["fp16_onnx"] = writer.add_artifact(fp16)
                accuracy = dict(fp16_report or {})
            plan = plans[t.name].to_dict()
            kept_float = int8.excluded if t.precision == "int8" and int8 is not None else []
            caches = {v: writer.add_artifact(p) for v, p in int8.caches.items()} if "calib_cache" in artifacts else {}
            recipes = _recipes(t, artifacts, caches, plan, shapes, float_layers=kept_float)
            writer.add_device(
                t.name, profile=t.profile.to_dict(), jetpack=t.jetpack.to_dict(), precision=t.precision,
                artifacts=artifacts, placement=plan, recipes=recipes, accuracy=accuracy, calibration=calibration,
                dla={"requested": t.dla, "decision": plan["decision"], "core": plan["dla_core"],
                     "target_jetpack_reason": t.jetpack_reason},
            )
        if check is not None:  # NVIDIA's parser on the staged bundle: a rejected bundle is never published
            check(writer)


def _recipes(t: Target, artifacts: dict[str, str], caches: dict[str, str], plan: dict[str, Any],
             shapes: dict[str, list], *, float_layers: list[str]) -> dict[str, Any]:
    """One recipe per JetPack line, each pointing at the calibration cache made for its TensorRT."""
    from ..engine import make_build_recipes
    from ..quantize.calib_cache import note_cache_header

    recipes: dict[str, Any] = {}
    for line in t.profile.jetpacks:
        arts = dict(artifacts, calib_cache=caches[line.tensorrt]) if line.tensorrt in caches else artifacts
        made = make_build_recipes(profile=t.profile, jetpacks=[line], precision=t.precision, artifacts=arts,
                                  placement=plan, input_shapes=shapes, workspace_mb=t.profile.defaults.workspace_mb,
                                  float_layers=float_layers)
        recipes.update({key: note_cache_header(recipe) for key, recipe in made.items()})
    return recipes
