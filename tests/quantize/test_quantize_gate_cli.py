"""The accuracy gate through `edgeinfer package`: an unmeasurable INT8 is refused unless accepted,
and --accuracy-budget's help says what the code checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeinfer.demo import demo_model_path


def test_accuracy_budget_help_matches_the_code(run_cli):
    r = run_cli("package", "--help")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    assert "mAP50-95 drop vs FP32, in mAP points" in text and "default 1.0" in text
    assert "0.01)" not in text and "mAP50 drop" not in text  # the old, wrong unit
    assert "--accept-unmeasured" in text


@pytest.fixture(scope="module")
def blank_frames(tmp_path_factory):
    """16 plain grey frames: the demo detector finds nothing on them, so agreement rests on nothing."""
    cv2 = pytest.importorskip("cv2")
    root = tmp_path_factory.mktemp("blank")
    for i in range(16):
        cv2.imwrite(str(root / f"f{i:02d}.jpg"), np.full((240, 320, 3), 100 + i, np.uint8))
    return root


@pytest.mark.slow  # one INT8 calibration of the demo model at 320 (~20-40 s on a loaded 2-core host)
def test_unmeasured_int8_refused_then_accepted(run_cli, tmp_path, blank_frames):
    out = tmp_path / "b.bundle"
    args = ["package", demo_model_path("onnx"), "--device", "orin-nano-8gb", "--precision", "int8",
            "--calib", blank_frames, "-o", out]
    r = run_cli(*args)
    assert r.returncode == 1 and "not measured" in r.stderr and "--accept-unmeasured" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    r = run_cli(*args, "--accept-unmeasured", "--json")
    assert r.returncode == 0, r.stderr
    acc = json.loads(r.stdout)["devices"]["orin-nano-8gb"]["accuracy"]
    assert acc["measured"] is False and "NOT measured" in acc["note"]
    text = run_cli("inspect", out).stdout
    assert "accuracy     not measured" in text and "box F1 1.000" not in text
    # every recipe's cache carries its own TensorRT's header (JetPack 5: 8502, 6.0: 8602, 6.1+: 100300)
    from edgeinfer.bundle import open_bundle
    from edgeinfer.quantize import parse_trt_calibration_cache
    from edgeinfer.quantize.calib_cache import exact_trt_version, trt_version_number

    headers = {}
    for recipe in open_bundle(out).device("orin-nano-8gb").recipes.values():
        if recipe.get("calib_cache"):
            cache = parse_trt_calibration_cache((out / recipe["calib_cache"]).read_text())
            assert cache.version == trt_version_number(exact_trt_version(recipe["tensorrt"])[0])
            assert f"--calib={recipe['calib_cache']}" in recipe["trtexec"]
            headers[recipe["tensorrt"]] = cache.version
            assert "output0" not in cache.scales  # the decode head stays out of INT8
    assert {headers.get("8.5.2"), headers.get("8.6.2"), headers.get("10.3")} == {8502, 8602, 100300}
