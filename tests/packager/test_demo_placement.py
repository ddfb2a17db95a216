"""DLA placement plans for the demo YOLO11n model on real device profiles."""
from __future__ import annotations

import pytest

from edgeinfer.demo import demo_model_path
from edgeinfer.packager import resolve_target
from edgeinfer.placement import plan_placement
from edgeinfer.profiles import get_profile


def _plan(device, **kw):
    target = resolve_target(get_profile(device), precision="int8", dla=kw.pop("dla", None), jetpack=None)
    return plan_placement(demo_model_path("onnx"), profile=target.profile, trt_version=target.jetpack.tensorrt,
                          dla=target.dla, precision="int8", **kw)


@pytest.mark.parametrize("device", ["orin-nx-16gb", "agx-orin-64gb", "xavier-nx"])
def test_dla_modules_get_per_node_reasons(device):
    plan = _plan(device)
    assert plan.dla_generation == (1 if device == "xavier-nx" else 2)
    compute = [n for n in plan.nodes if n.op == "Conv"]
    assert compute and all(n.dla_capable for n in compute if n.flops)  # YOLO convs are DLA-capable
    off_dla = [n for n in plan.nodes if n.device != "folded" and not n.dla_capable]
    assert off_dla and all(n.reason and n.rule and n.source for n in off_dla)
    assert {n.rule for n in off_dla} & {"concat-axis", "slice", "reshape-adjacent", "div"}  # the detect head
    assert plan.dla_subgraphs >= 1 and plan.transitions >= 1 and 0.5 < plan.dla_flops_share <= 1.0
    expected = "dla" if plan.dla_flops_share >= 0.7 and plan.dla_subgraphs <= 4 else "gpu"
    assert plan.decision == expected and plan.reason.startswith(f"auto chose {expected.upper()}")
    pinned = [n for n in plan.nodes if n.rule == "dla-island"]
    assert all(n.dla_capable and n.device == "GPU" for n in pinned)
    forced = _plan(device, dla=0)
    assert forced.decision == "dla" and forced.dla_core == 0
    assert {n.name for n in forced.nodes if n.device == "GPU"} == {n.name for n in off_dla + pinned}


def test_orin_nano_has_no_dla():
    plan = _plan("orin-nano-8gb")
    assert plan.decision == "gpu" and plan.dla_core is None
    assert "orin-nano-8gb has no DLA" in plan.reason
    assert {n.device for n in plan.nodes} <= {"GPU", "folded"}
