"""Bundle format: one directory (or ``.tar``) holding the manifest and content-addressed artifacts.

Layout::

    NAME.bundle/
      manifest.yaml          self-checked (sha256 header) + checksums of every other file
      artifacts/<sha16>.onnx model, Q/DQ and FP16 ONNX, calibration caches: stored once, shared by devices
      engines/<key>.engine   TensorRT engines, added on the device by `edgeinfer build`

Example:
    >>> from edgeinfer.bundle import open_bundle
    >>> bundle = open_bundle("out/shapes.bundle")          # doctest: +SKIP
    >>> bundle.device("orin-nx-16gb").precision            # doctest: +SKIP
    'int8'

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

from .manifest import ARTIFACT_KINDS, MANIFEST_NAME, SCHEMA_VERSION
from .reader import Bundle, DeviceEntry, open_bundle, verify_checksums
from .summary import placement_summary, summarize
from .writer import BundleWriter

__all__ = ["ARTIFACT_KINDS", "MANIFEST_NAME", "SCHEMA_VERSION", "Bundle", "BundleWriter", "DeviceEntry",
           "open_bundle", "placement_summary", "summarize", "verify_checksums"]
