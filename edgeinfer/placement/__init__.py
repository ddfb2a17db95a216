"""Static DLA/GPU placement: per-node DLA rules for the profile's DLA generation -> PlacementPlan.

Example:
    >>> from edgeinfer.placement import plan_placement                                   # doctest: +SKIP
    >>> plan = plan_placement("m.onnx", profile=get_profile("xavier-nx"), trt_version="8.5")  # doctest: +SKIP
    >>> plan.to_dict()["summary"]["top_reasons"][0]["rule"]                              # doctest: +SKIP
    'concat-axis'
"""
from __future__ import annotations

from .plan import (
    AUTO_MAX_SUBGRAPHS,
    AUTO_MIN_FLOPS_SHARE,
    NodePlacement,
    PlacementPlan,
    plan_placement,
    trt_supports_dla,
)
from .rules import RULES, DlaRule

__all__ = ["AUTO_MAX_SUBGRAPHS", "AUTO_MIN_FLOPS_SHARE", "RULES", "DlaRule", "NodePlacement", "PlacementPlan",
           "plan_placement", "trt_supports_dla"]
