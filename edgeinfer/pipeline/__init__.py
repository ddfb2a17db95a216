"""Capture → infer → sink pipeline: sources by URI, bounded queues, micro-batching, sinks, stats.

Importing this package is cheap; OpenCV loads only when a source or sink opens.
Public entry point: :class:`edgeinfer.pipeline.pipeline.Pipeline` (also ``edgeinfer.Pipeline``).
"""
from __future__ import annotations
