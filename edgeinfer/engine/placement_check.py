"""Where the layers of a built engine ACTUALLY run (DLA or GPU), read from the engine inspector's
JSON, next to the static placement plan, with the differences listed.

How a layer is classified (TensorRT prints DLA regions as ``{ForeignNode[first...last]}``):
  * "Reformatting CopyNode ..." layers are GPU reformats at DLA/GPU boundaries (counted apart);
  * a LayerType mentioning "dla", or a ``{ForeignNode[...]}`` layer of a DLA build whose type is
    not Myelin, runs on DLA (on GPU-only builds TensorRT's Myelin regions share that name style);
  * anything else runs on the GPU.
The ONNX nodes inside a layer come from its ``Metadata`` (``[ONNX Layer: name]``, TRT >= 8.6)
when present, else from the fused name (``a + b``) or the ``first...last`` range expanded over
the plan's node order. This heuristic is exercised on real engines only by the jetson tier.

Example:
    >>> info = {"Layers": [{"Name": "{ForeignNode[/c1.../c2]}", "LayerType": "DLA"},
    ...                    {"Name": "/head", "LayerType": "Shuffle"}]}
    >>> actual = node_devices(info, node_order=["/c1", "/act", "/c2", "/head"], dla_core=0)
    >>> actual
    {'/c1': 'dla', '/act': 'dla', '/c2': 'dla', '/head': 'gpu'}
    >>> compare_placement({"nodes": [{"name": "/c1", "device": "dla"}, {"name": "/head", "device": "dla"}]},
    ...                   actual)["differences"]
    [{'node': '/head', 'planned': 'dla', 'actual': 'gpu'}]
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

_FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$", re.S)
_ONNX_META = re.compile(r"\[ONNX Layer: ([^\]]+)\]")


def classify_layer(layer: Any, *, dla_core: Optional[int]) -> str:
    """"dla", "gpu" or "reformat" for one inspector layer entry (dict in DETAILED mode, str otherwise)."""
    name = str(layer.get("Name", "")) if isinstance(layer, Mapping) else str(layer)
    kind = str(layer.get("LayerType", "")) if isinstance(layer, Mapping) else ""
    if name.startswith("Reformatting CopyNode") or kind.lower() == "reformat":
        return "reformat"
    if "dla" in kind.lower():
        return "dla"
    if dla_core is not None and _FOREIGN.match(name) and "myelin" not in kind.lower():
        return "dla"
    return "gpu"


def layer_nodes(layer: Any, node_order: Sequence[str]) -> List[str]:
    """The ONNX node names a (possibly fused) inspector layer covers."""
    if isinstance(layer, Mapping) and layer.get("Metadata"):
        found = _ONNX_META.findall(str(layer["Metadata"]))
        if found:
            return found
    name = str(layer.get("Name", "")) if isinstance(layer, Mapping) else str(layer)
    match = _FOREIGN.match(name)
    if match:
        first, _, last = match.group(1).partition("...")
        if first in node_order and last in node_order:
            start, end = node_order.index(first), node_order.index(last)
            return list(node_order[start:end + 1])
        return [n for n in (first, last) if n]
    return [part.strip() for part in name.split(" + ") if part.strip()]


def node_devices(layer_info: Mapping[str, Any], *, node_order: Sequence[str], dla_core: Optional[int]) -> Dict[str, str]:
    """ONNX node name -> "dla"/"gpu" for every node the engine's layers mention."""
    devices: Dict[str, str] = {}
    for layer in layer_info.get("Layers", []) or []:
        where = classify_layer(layer, dla_core=dla_core)
        if where == "reformat":
            continue
        for node in layer_nodes(layer, node_order):
            devices[node] = where
    return devices


def planned_devices(placement: Mapping[str, Any]) -> Dict[str, str]:
    """ONNX node name -> "dla"/"gpu" from a PlacementPlan dict's ``nodes`` list."""
    nodes = placement.get("nodes") or []
    devices = {str(n["name"]): str(n.get("device", "gpu")).lower() for n in nodes if isinstance(n, Mapping) and "name" in n}
    return {name: where for name, where in devices.items() if where in ("dla", "gpu")}  # "folded" constants vanish


def compare_placement(placement: Mapping[str, Any], actual: Mapping[str, str]) -> Dict[str, Any]:
    """Planned vs actual per node, with counts and the list of nodes where they differ."""
    planned = planned_devices(placement)
    differences = [{"node": node, "planned": want, "actual": actual[node]}
                   for node, want in planned.items() if node in actual and actual[node] != want]
    return {
        "planned": _counts(planned), "actual": _counts(actual),
        "differences": differences,
        "not_reported": sorted(n for n in planned if n not in actual),  # folded constants, or names TRT changed
    }


def summarize_layers(layer_info: Mapping[str, Any], *, dla_core: Optional[int]) -> List[Dict[str, str]]:
    """Compact per-layer list for the manifest: name, type, where it runs, output precision."""
    out = []
    for layer in layer_info.get("Layers", []) or []:
        name = str(layer.get("Name", "")) if isinstance(layer, Mapping) else str(layer)
        kind = str(layer.get("LayerType", "")) if isinstance(layer, Mapping) else ""
        out.append({"name": name, "type": kind, "device": classify_layer(layer, dla_core=dla_core),
                    "precision": layer_precision(layer)})
    return out


# Inspector output tensors describe their type in text: "Format/Datatype" up to 10.x ("Thirty-two wide
# channel vectorized row major Int8 format", "Channel major FP16 format where channel % 8 == 0",
# "Row major linear FP32"), separate "Format" and "DataType" fields in TensorRT 11 (IEngineInspector
# migration notes). Order matters: the first match wins.
_PRECISION_WORDS = (("int8", ("int8",)), ("fp8", ("fp8",)), ("fp16", ("fp16", "half")), ("bf16", ("bf16",)),
                    ("int32", ("int32",)), ("int64", ("int64",)), ("bool", ("bool",)), ("fp32", ("fp32", "float")))


def layer_precision(layer: Any) -> str:
    """The data type a layer produces ("int8", "fp16", "fp32", ...), from its first output in the
    engine inspector's DETAILED JSON; "unknown" where the inspector does not say.

    Example:
        >>> layer_precision({"Outputs": [{"Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}]})
        'int8'
        >>> layer_precision({"Outputs": [{"Format": "Row major linear", "DataType": "Half"}]}), layer_precision("x")
        ('fp16', 'unknown')
    """
    if not isinstance(layer, Mapping):
        return "unknown"
    for tensor in layer.get("Outputs") or []:
        if not isinstance(tensor, Mapping):
            continue
        text = " ".join(str(tensor.get(k, "")) for k in ("Format/Datatype", "DataType", "Datatype")).lower()
        for precision, words in _PRECISION_WORDS:
            if any(word in text for word in words):
                return precision
    return "unknown"


def int8_share(layers: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """How many of the compute layers (convolutions, and DLA regions) of :func:`summarize_layers`
    output run INT8: ``{"int8": n, "compute": m, "share": n/m, "unknown": k}``.

    Example:
        >>> int8_share([{"type": "CaskConvolution", "device": "gpu", "precision": "int8"},
        ...             {"type": "CaskConvolution", "device": "gpu", "precision": "fp16"},
        ...             {"type": "Reformat", "device": "reformat", "precision": "fp16"}])["share"]
        0.5
    """
    compute = [layer for layer in layers
               if "conv" in str(layer.get("type", "")).lower() or layer.get("device") == "dla"]
    known = [layer for layer in compute if layer.get("precision", "unknown") != "unknown"]
    int8 = sum(1 for layer in known if layer.get("precision") == "int8")
    return {"int8": int8, "compute": len(known), "unknown": len(compute) - len(known),
            "share": round(int8 / len(known), 4) if known else 0.0}


def _counts(devices: Mapping[str, str]) -> Dict[str, int]:
    counts = {"dla": 0, "gpu": 0}
    for where in devices.values():
        counts[where] = counts.get(where, 0) + 1
    return counts
