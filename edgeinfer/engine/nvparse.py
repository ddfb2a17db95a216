"""Verify a bundle's ONNX artifacts with NVIDIA's own ONNX parser and builder (TensorRT, or TensorRT-RTX
on a host without a GPU): every FP32/FP16/Q/DQ ONNX parses (weakly typed, and strongly typed for Q/DQ and
FP16 ONNX or where a recipe asks) and builds ahead of time; every layer name the bundle pins
(placement GPU pins, ``--layerDeviceTypes``/``--layerPrecisions`` in recipes, float-kept layers) exists in
the parsed network; every ONNX's opset is within each target TensorRT's documented parser limit.

It is a verification oracle, not a device: a TensorRT-RTX pass says nothing about how an engine runs on a
Jetson (see :data:`edgeinfer.engine.parser_limits.RTX_DIFFERENCES`). Device-side code: Python 3.8-clean.

Example:
    >>> report = verify_bundle("shapes.bundle")                  # doctest: +SKIP
    >>> report.parser, report.ok, [c.artifact for c in report.checks][:1]   # doctest: +SKIP
    ('TensorRT-RTX 1.7.1.116', True, ['artifacts/40baa7ae7eb03dfe.onnx'])
"""
from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from . import parser_limits
from .parser_oracle import NodeError, Oracle, load_oracle
from .recipe import placement_dla_core, placement_gpu_pins

ONNX_KINDS = ("onnx", "fp16_onnx", "qdq_onnx")
TYPED_KINDS = ("fp16_onnx", "qdq_onnx")  # built strongly typed by TensorRT 11 and 10.x strongly typed recipes
PIN_FLAGS = ("--layerDeviceTypes=", "--layerPrecisions=", "--layerOutputTypes=")


@dataclass
class ArtifactCheck:
    """One ONNX artifact in one typing mode."""

    artifact: str
    kinds: List[str]
    typing: str  # "weak" | "strong"
    parsed: bool
    built: Optional[bool]
    num_layers: int
    engine_bytes: int
    parse_s: float
    build_s: float
    errors: List[NodeError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.parsed and self.built is not False


@dataclass
class MissingPins:
    """Layer names ``source`` pins for ``device`` that the network parsed from ``artifact`` does not have."""

    device: str
    source: str
    artifact: str
    names: List[str]


@dataclass
class OpsetIssue:
    """An artifact's opset above a target TensorRT's documented parser limit."""

    artifact: str
    opset: int
    tensorrt: str
    max_opset: int
    devices: List[str]
    target: bool  # the opset exceeds a device's own target TensorRT (not only another JetPack line's)
    source: str


@dataclass
class VerifyReport:
    """The verification result: which parser checked what, and every problem found."""

    parser: str  # "TensorRT-RTX 1.7.1.116" / "TensorRT 10.3.0.30"
    onnx_parser_version: str
    built: bool  # whether engines were built ahead of time (besides parsing)
    checks: List[ArtifactCheck] = field(default_factory=list)
    missing_pins: List[MissingPins] = field(default_factory=list)
    opset_issues: List[OpsetIssue] = field(default_factory=list)
    not_checked: List[Dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every artifact parsed (and built) and every pinned layer exists. Opset issues are warnings:
        the parser accepted the graph; whether an older TensorRT does depends on the operators used."""
        return all(c.ok for c in self.checks) and not self.missing_pins

    def problems(self) -> List[str]:
        """One line per failure, naming the artifact, the node and the fix."""
        lines = []
        for c in self.checks:
            if not c.ok:
                first = c.errors[0] if c.errors else NodeError("", "", "rejected")
                step = "parse" if not c.parsed else "build"
                lines.append(f"NVIDIA's parser ({self.parser}) cannot {step} {'/'.join(c.kinds)} {c.artifact} "
                             f"({c.typing}ly typed): {first.line()}; fix: {parser_limits.fix_for(first.message)}")
        for m in self.missing_pins:
            shown = ", ".join(m.names[:5]) + (f" (+{len(m.names) - 5} more)" if len(m.names) > 5 else "")
            lines.append(f"{m.device}: {m.source} pins layer(s) absent from the network parsed from {m.artifact}: "
                         f"{shown}; fix: re-package so pins are made from this ONNX")
        return lines

    def warnings(self) -> List[str]:
        return [f"{i.artifact}: opset {i.opset} > {i.max_opset}, the highest TensorRT {i.tensorrt}'s parser documents "
                f"({', '.join(i.devices)}{'' if i.target else '; not the target JetPack line'}): re-export with "
                f"opset {i.max_opset} for it" for i in self.opset_issues]

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, problems=self.problems(), warnings=self.warnings())
        return data


def verify_bundle(path: Union[str, Path], *, build: bool = True, module: Optional[str] = None) -> VerifyReport:
    """Open the bundle at ``path`` (checksums verified) and verify it; see :func:`verify_manifest`."""
    from ..bundle import open_bundle

    bundle = open_bundle(path)
    return verify_manifest_in_child(bundle.manifest, bundle.root, build=build, module=module)


def verify_manifest_in_child(manifest: Mapping[str, Any], root: Union[str, Path], *, build: bool = True,
                             module: Optional[str] = None) -> VerifyReport:
    """:func:`verify_manifest` in a child process: a crash of NVIDIA's native parser or builder becomes a
    BuildError naming the signal instead of ending this process (see :mod:`edgeinfer.engine.isolate`)."""
    from .isolate import call_in_child

    return call_in_child(_verify_in_child, dict(manifest), str(root), build, module,
                         what="NVIDIA's ONNX parser and builder")


def _verify_in_child(manifest: Dict[str, Any], root: str, build: bool, module: Optional[str]) -> VerifyReport:
    return verify_manifest(manifest, root, build=build, module=module)


def verify_manifest(manifest: Mapping[str, Any], root: Union[str, Path], *, build: bool = True,
                    module: Optional[str] = None, oracle: Optional[Oracle] = None) -> VerifyReport:
    """Verify every ONNX artifact ``manifest`` lists under ``root`` (a bundle directory, or one being written).

    Raises MissingDependencyError (with the install hint) when neither TensorRT nor TensorRT-RTX is importable.
    """
    start = time.perf_counter()
    oracle = oracle or load_oracle(module)
    root = Path(root)
    report = VerifyReport(parser=f"{oracle.name} {oracle.version}", onnx_parser_version=oracle.onnx_parser_version,
                          built=build)
    if oracle.rtx:
        report.not_checked = [{"key": d.key, "what": d.what, "consequence": d.consequence, "source": d.source}
                              for d in parser_limits.RTX_DIFFERENCES]
    if not oracle.can_strongly_type():
        report.not_checked.append({"key": "no-strong-typing", "what": f"{report.parser} has no strongly typed networks",
                                   "consequence": "Q/DQ and FP16 ONNX are parsed weakly typed only",
                                   "source": "https://docs.nvidia.com/deeplearning/tensorrt/api/python_api/infer/"
                                             "Core/Builder.html (NetworkDefinitionCreationFlag.STRONGLY_TYPED)"})
    layers: Dict[str, List[str]] = {}
    for rel, kinds in _onnx_artifacts(manifest).items():
        modes = [False] + ([True] if _wants_strong(manifest, rel, kinds) and oracle.can_strongly_type() else [])
        for strong in modes:
            res = oracle.check(root / rel, strongly_typed=strong, build=build, shapes=_shapes_for(manifest, rel),
                               quantized="qdq_onnx" in kinds)
            report.checks.append(ArtifactCheck(rel, sorted(kinds), "strong" if strong else "weak", res.parsed, res.built,
                                               res.num_layers, res.engine_bytes, round(res.parse_s, 3),
                                               round(res.build_s, 3), res.errors))
            if res.parsed and rel not in layers:
                layers[rel] = res.layer_names
    report.missing_pins = _missing_pins(manifest, layers)
    report.opset_issues = _opset_issues(manifest, root)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _onnx_artifacts(manifest: Mapping[str, Any]) -> Dict[str, List[str]]:
    """bundle-relative ONNX path -> the artifact kinds it serves (an artifact is stored once, shared by devices)."""
    out: Dict[str, List[str]] = {}
    for entry in manifest["devices"].values():
        for kind, rel in (entry.get("artifacts") or {}).items():
            if kind in ONNX_KINDS and rel and kind not in out.setdefault(str(rel), []):
                out[str(rel)].append(kind)
    return out


def _recipes(manifest: Mapping[str, Any]) -> Iterator[Tuple[str, Mapping[str, Any], str, Mapping[str, Any]]]:
    for name, entry in manifest["devices"].items():
        for key, recipe in (entry.get("recipes") or {}).items():
            yield str(name), entry, str(key), recipe


def _wants_strong(manifest: Mapping[str, Any], rel: str, kinds: List[str]) -> bool:
    if any(k in TYPED_KINDS for k in kinds):
        return True
    return any(r.get("onnx") == rel and r.get("network") == "strongly-typed" for _, _, _, r in _recipes(manifest))


def _shapes_for(manifest: Mapping[str, Any], rel: str) -> Dict[str, List[int]]:
    for _, _, _, recipe in _recipes(manifest):
        if recipe.get("input_shapes"):
            return {str(k): list(v) for k, v in recipe["input_shapes"].items()}
    inputs = ((manifest.get("model") or {}).get("info") or {}).get("inputs") or []
    return {str(t.get("name")): list(t.get("shape") or []) for t in inputs if isinstance(t, Mapping)}


def recipe_pins(recipe: Mapping[str, Any]) -> List[str]:
    """Layer names a recipe pins: its ``gpu_layers``/``layer_precisions`` and the per-layer trtexec flags.

    >>> recipe_pins({"gpu_layers": ["/a"], "trtexec": "trtexec --layerPrecisions=/b:fp16,*:fp32 --fp16"})
    ['/a', '/b']
    """
    names = [str(n) for n in recipe.get("gpu_layers") or []]
    precisions = recipe.get("layer_precisions") or {}
    names += [str(n) for n in (precisions if isinstance(precisions, (dict, list)) else [])]
    for arg in shlex.split(str(recipe.get("trtexec") or "")):
        for flag in PIN_FLAGS:
            if arg.startswith(flag):
                names += [item.rsplit(":", 1)[0] for item in arg[len(flag):].split(",") if ":" in item]
    return [n for n in dict.fromkeys(names) if n and n != "*"]


def _pin_sources(manifest: Mapping[str, Any]) -> Iterator[Tuple[str, str, str, List[str]]]:
    """(device, source, artifact, names) for every set of pinned layer names in the manifest."""
    for name, _entry, _key, recipe in _recipes(manifest):
        pins = recipe_pins(recipe)
        if pins and recipe.get("onnx"):
            yield name, "recipe (--layerDeviceTypes/--layerPrecisions)", str(recipe["onnx"]), pins
    for name, entry in manifest["devices"].items():
        artifacts = entry.get("artifacts") or {}
        placement = entry.get("placement") or {}
        if placement_dla_core(placement) is not None and artifacts.get("onnx"):
            yield str(name), "placement plan (GPU pins)", str(artifacts["onnx"]), placement_gpu_pins(placement)
        kept = [str(n) for n in (entry.get("accuracy") or {}).get("excluded_layers") or []]
        for kind in ("onnx", "qdq_onnx"):
            if kept and artifacts.get(kind):
                yield str(name), "float-kept layers (accuracy gate)", str(artifacts[kind]), kept


def _missing_pins(manifest: Mapping[str, Any], layers: Dict[str, List[str]]) -> List[MissingPins]:
    found: Dict[Tuple[str, str, str], List[str]] = {}
    for device, source, rel, names in _pin_sources(manifest):
        if rel not in layers:
            continue  # the artifact did not parse: that is reported already
        have = set(layers[rel])
        missing = found.setdefault((device, source, rel), [])
        missing += [n for n in names if n not in have and n not in missing]
    return [MissingPins(d, s, a, names) for (d, s, a), names in found.items() if names]


def _opset_issues(manifest: Mapping[str, Any], root: Path) -> List[OpsetIssue]:
    """Each ONNX a recipe parses vs that recipe's TensorRT, and every ONNX artifact vs the device's target."""
    pairs: Dict[Tuple[str, str], Dict[str, bool]] = {}
    for name, entry, _key, recipe in _recipes(manifest):
        target = str((entry.get("jetpack") or {}).get("tensorrt", ""))
        if recipe.get("onnx"):
            trt = str(recipe.get("tensorrt", ""))
            devices = pairs.setdefault((str(recipe["onnx"]), trt), {})
            devices[name] = devices.get(name, False) or trt == target
    for name, entry in manifest["devices"].items():
        target = str((entry.get("jetpack") or {}).get("tensorrt", ""))
        for kind, rel in (entry.get("artifacts") or {}).items():
            if kind in ONNX_KINDS and rel and target:
                pairs.setdefault((str(rel), target), {})[str(name)] = True
    opsets: Dict[str, Optional[int]] = {}
    issues = []
    for (rel, trt), devices in sorted(pairs.items()):
        limit = parser_limits.opset_limit(trt)
        if rel not in opsets:
            opsets[rel] = onnx_opset(root / rel)
        opset = opsets[rel]
        if limit is not None and opset is not None and opset > limit.max_opset:
            issues.append(OpsetIssue(rel, opset, trt, limit.max_opset, sorted(devices), any(devices.values()),
                                     limit.source))
    return issues


def onnx_opset(path: Path) -> Optional[int]:
    """The default-domain opset an ONNX file imports (None when unreadable: the parser check reports that)."""
    from .._deps import require

    onnx = require("onnx", feature="reading ONNX opsets")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable file fails the parser check with the parser's own words
        return None
    versions = [int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else None
