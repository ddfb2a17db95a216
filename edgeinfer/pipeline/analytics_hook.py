"""The pipeline's two analytics/option seams, kept out of pipeline.py: build the Analytics stage
from Pipeline arguments, and fold post-processing options into the model's load arguments.

Example:
    >>> merge_post_options({"conf": 0.3}, {"iou": 0.5, "classes": [0]}, stride=1)
    {'conf': 0.3, 'iou': 0.5, 'classes': [0]}
    >>> make_analytics(None, tracker=None, zones=None, record_events=None, stride=1) is None
    True
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional

from ..errors import ConfigError

POST_OPTIONS = ("conf", "iou", "max_det", "classes", "class_conf", "task", "agnostic_nms", "top_k", "mask_format")


def merge_post_options(load_kwargs: Optional[Dict[str, Any]], options: Dict[str, Any], *, stride: int,
                       model: Any = "path") -> Dict[str, Any]:
    """``load_kwargs`` plus the post-processing ``options`` (they only apply when the pipeline loads the model)."""
    unknown = sorted(set(options) - set(POST_OPTIONS))
    if unknown:
        raise ConfigError(f"Pipeline got unknown argument(s) {unknown}",
                          hint=f"post-processing options are {', '.join(POST_OPTIONS)}")
    if int(stride) < 1:
        raise ConfigError(f"stride={stride} must be >= 1", hint="stride=1 processes every frame, 2 every other one")
    given = {k: v for k, v in options.items() if v is not None}
    if given and not isinstance(model, (str, os.PathLike)):
        raise ConfigError(f"{sorted(given)} apply when the Pipeline loads the model from a path",
                          hint="pass them to edgeinfer.load(...) for a model you loaded yourself")
    merged = dict(load_kwargs or {})
    merged.update({k: v for k, v in options.items() if v is not None})
    return merged


def make_analytics(analytics: Any, *, tracker: Optional[str], zones: Any, record_events: Optional[str], stride: int,
                   fps_of: Optional[Callable[[str], float]] = None, on_event: Optional[Callable[[Any], Any]] = None,
                   source_ids: Optional[List[str]] = None) -> Any:
    """An :class:`edgeinfer.analytics.Analytics`, or None when nothing asks for one."""
    if analytics is not None:
        if tracker or zones or record_events:
            raise ConfigError("pass analytics= or tracker/zones/record_events, not both",
                              hint="configure the Analytics object you pass")
        return analytics
    if not (tracker or zones or record_events):
        return None
    if zones and not tracker:
        tracker = "bytetrack"  # zones and lines count tracks: they need ids
    from ..analytics import Analytics

    return Analytics(tracker=tracker, config=zones, record_events=record_events, stride=stride, fps_of=fps_of,
                     on_event=on_event, source_ids=source_ids)
