"""ModelInfo for a plain ONNX file, read through the ONNX Runtime session (no `onnx` package,
no onnxslim, no torch on the device). Ultralytics metadata (names, imgsz, stride, task,
end2end) decides the layout with the same rules as host-side ingestion (edgeinfer.model.layout).

Example:
    >>> from edgeinfer.model.info import TensorSpec
    >>> info = info_from_specs([TensorSpec("images", [1, 3, 320, 320])], [TensorSpec("output0", [1, 7, 2100])],
    ...                        {"names": "{0: 'a', 1: 'b', 2: 'c'}", "stride": "32", "task": "detect",
    ...                         "author": "Ultralytics"}, source="demo.onnx")
    >>> info.output_layout, info.names[2], info.imgsz
    ('yolov8', 'c', (320, 320))
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..model.info import ModelInfo, TensorSpec
from ..model.layout import describe_input, detect_layout, parse_bool, parse_imgsz, parse_names, static_hw


def info_from_specs(inputs: List[TensorSpec], outputs: List[TensorSpec], meta: Dict[str, str], *,
                    source: str, preprocess: Any = None) -> ModelInfo:
    """Build ModelInfo from I/O specs and ONNX metadata_props (the input layout from its shape: no graph here).

    ``preprocess`` overrides what is read (a PreprocessSpec, a mapping or ``"imagenet resize=stretch"``).
    """
    names = parse_names(meta.get("names"))
    shape = inputs[0].shape
    spec, _how = describe_input(shape, meta, declared=preprocess)
    imgsz = static_hw(shape, spec.layout) or parse_imgsz(meta.get("imgsz"))
    task, layout = detect_layout([t.shape for t in outputs], imgsz=imgsz, names=names,
                                 end2end=parse_bool(meta.get("end2end")), task=meta.get("task"))
    return ModelInfo(inputs=inputs, outputs=outputs, task=task, output_layout=layout, names=names,
                     preprocess=spec, source=source, metadata=dict(meta))


def info_from_session(session: Any, inputs: List[TensorSpec], outputs: List[TensorSpec], *, source: str,
                      preprocess: Any = None) -> ModelInfo:
    """ModelInfo from a live onnxruntime InferenceSession."""
    meta = dict(session.get_modelmeta().custom_metadata_map or {})
    return info_from_specs(inputs, outputs, {str(k): str(v) for k, v in meta.items()}, source=source,
                           preprocess=preprocess)


def target_hw(info: ModelInfo, default: int = 640) -> tuple:
    """Input (h, w): the static size, else Ultralytics' imgsz metadata, else ``default`` square."""
    return info.imgsz or parse_imgsz(info.metadata.get("imgsz")) or (default, default)
