"""Engine keys, selection against the running device, refusal with the build command, and the
build-on-load lock exercised by two real processes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from engine_helpers import JP62, ORIN_NX, write_bundle
from trt_standin import make_standin

from edgeinfer.bundle import open_bundle
from edgeinfer.engine import EngineKey, build_engines, engine_key_for, select_engine
from edgeinfer.errors import EngineMismatchError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DETECTED = {"profile": ORIN_NX, "l4t": "36.4.3", "jetpack": JP62}


def test_key_is_deterministic_and_round_trips():
    kwargs = dict(profile=ORIN_NX, jetpack=JP62, tensorrt="10.3.0.30", precision="int8",
                  shapes={"images": [1, 3, 320, 320]}, dla_core=1)
    key = engine_key_for(**kwargs)
    assert key == engine_key_for(**kwargs) and EngineKey.from_dict(key.to_dict()) == key
    assert key.filename() == "orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3.0.30_sm87_int8_images-1x3x320x320_dla1.engine"
    others = [engine_key_for(**dict(kwargs, dla_core=None)), engine_key_for(**dict(kwargs, precision="fp16")),
              engine_key_for(**dict(kwargs, tensorrt="10.3.0.31")), engine_key_for(**dict(kwargs, jetpack=dict(JP62, l4t="36.4.4")))]
    assert len({k.filename() for k in others + [key]}) == 5


def test_long_shape_lists_are_hashed_into_the_name():
    shapes = {f"input_{i}": [1, 3, 640, 640] for i in range(6)}
    name = engine_key_for(profile=ORIN_NX, jetpack=JP62, tensorrt="10.3", precision="fp16", shapes=shapes,
                          dla_core=None).filename()
    assert "shapes-" in name and len(name) < 140


def test_no_engine_yet_names_the_build_command(model_files, tmp_path):
    bundle = open_bundle(write_bundle(tmp_path / "b.bundle", model_files))
    with pytest.raises(EngineMismatchError) as info:
        select_engine(bundle, device=DETECTED)
    assert f"edgeinfer build {bundle.root} --device orin-nx-16gb --dla-core 0" in str(info.value)


def test_select_after_build_and_refuse_on_each_mismatch(model_files, tmp_path):
    path = write_bundle(tmp_path / "b.bundle", model_files)
    build_engines(path, device="auto", detected=DETECTED, trt=make_standin("10.3"), timing_cache=tmp_path / "t")
    record = select_engine(open_bundle(path), device=DETECTED, tensorrt_version="10.3.0.30")
    assert record.path.is_file() and record.key.dla_core == 0 and record.key.tensorrt == "10.3.0.30"
    assert select_engine(open_bundle(path), device=DETECTED).path == record.path  # JetPack line's 10.3 matches
    cases = [
        (dict(tensorrt_version="10.3.0.31"), "TensorRT 10.3.0.30 != this device's 10.3.0.31"),
        (dict(dla_core="gpu"), "dla_core 0 != this device's gpu"),
        (dict(dla_core=1), "dla_core 0 != this device's 1"),
        (dict(device=dict(DETECTED, l4t="36.4.4")), "l4t 36.4.3 != this device's 36.4.4"),
        (dict(device=dict(DETECTED, jetpack=dict(JP62, tensorrt="8.6"))), "TensorRT 10.3.0.30 != this device's 8.6"),
    ]
    for kwargs, expected in cases:
        kwargs.setdefault("device", DETECTED)
        with pytest.raises(EngineMismatchError, match="no engine in the bundle matches") as info:
            select_engine(open_bundle(path), **kwargs)
        assert expected in str(info.value) and "edgeinfer build" in str(info.value)


def test_device_missing_from_the_bundle(model_files, tmp_path):
    bundle = open_bundle(write_bundle(tmp_path / "b.bundle", model_files))
    other = dict(DETECTED, profile=dict(ORIN_NX, name="agx-orin-64gb"))
    with pytest.raises(EngineMismatchError, match="no entry for this device"):
        select_engine(bundle, device=other)


def test_build_records_actual_placement_next_to_the_plan(model_files, tmp_path):
    nodes = [{"name": n, "device": "dla"} for n in
             ["/model.0/conv/Conv", "/model.0/act/Sigmoid", "/model.0/act/Mul", "/model.1/conv/Conv", "/model.23/Softmax"]]
    plan = {"dla_core": 0, "gpu_layers": ["/model.23/Reshape"], "nodes": nodes + [{"name": "/model.23/Reshape", "device": "gpu"}]}
    path = write_bundle(tmp_path / "b.bundle", model_files, placement=plan)
    (record,) = build_engines(path, device="orin-nx-16gb", detected=DETECTED, trt=make_standin("10.3"),
                              timing_cache=tmp_path / "t")
    placement = record["placement"]
    assert placement["nodes"]["/model.1/conv/Conv"] == "dla" and placement["nodes"]["/model.23/Reshape"] == "gpu"
    # the stand-in has no DLA Softmax: the difference from the plan is listed
    assert placement["differences"] == [{"node": "/model.23/Softmax", "planned": "dla", "actual": "gpu"}]
    assert open_bundle(path).device("orin-nx-16gb").engines[0]["sha256"] == record["sha256"]


def test_tar_bundles_get_the_engine_too(model_files, tmp_path):
    from edgeinfer.bundle.archive import pack_archive

    directory = write_bundle(tmp_path / "b.bundle", model_files)
    tar = tmp_path / "b.tar"
    pack_archive(directory, tar)
    build_engines(tar, device="orin-nx-16gb", detected=DETECTED, trt=make_standin("10.3"), timing_cache=tmp_path / "t")
    record = select_engine(open_bundle(tar), device=DETECTED, tensorrt_version="10.3.0.30")
    assert record.path.is_file()


_WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, {here!r})
    from trt_standin import make_standin
    sys.modules["tensorrt"] = make_standin("10.3", build_delay=1.5, build_log=Path({log!r}))
    from edgeinfer.engine import select_engine
    from edgeinfer.bundle import open_bundle
    Path({ready!r} + sys.argv[1]).touch()
    while len(list(Path({ready!r}).parent.glob("ready*"))) < 2:  # start both at the same moment
        time.sleep(0.01)
    detected = {{"profile": {profile!r}, "l4t": "36.4.3", "jetpack": {jetpack!r}}}
    rec = select_engine(open_bundle({bundle!r}), device=detected, tensorrt_version="10.3.0.30",
                        build_on_load=True, timing_cache={cache!r})
    print(json.dumps({{"path": str(rec.path), "sha256": rec.record["sha256"]}}))
""")


@pytest.mark.integration
def test_build_on_load_builds_once_across_two_processes(model_files, tmp_path):
    bundle = write_bundle(tmp_path / "b.bundle", model_files)
    log = tmp_path / "builds.log"
    code = _WORKER.format(here=str(HERE), log=str(log), ready=str(tmp_path / "sync" / "ready"), profile=ORIN_NX,
                          jetpack=JP62, bundle=str(bundle), cache=str(tmp_path / "t.cache"))
    (tmp_path / "sync").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], cwd=str(REPO), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert log.read_text().count("build") == 1  # the second process waited and reused the first's engine
    assert results[0] == results[1]
    assert len(open_bundle(bundle).device("orin-nx-16gb").engines) == 1


def test_build_engines_refuses_what_this_tensorrt_cannot_do(model_files, tmp_path):
    from edgeinfer.errors import BuildError

    path = write_bundle(tmp_path / "b.bundle", model_files)
    with pytest.raises(BuildError, match="DLA core 0 cannot be used here: TensorRT 11.1 has no DLA"):
        build_engines(path, device="orin-nx-16gb", detected=DETECTED, dla_core=0, trt=make_standin("11.1"))

    class Trt82:
        __version__ = "8.2.1.8"

    with pytest.raises(BuildError, match="JetPack 4"):
        build_engines(path, device="orin-nx-16gb", detected=DETECTED, trt=Trt82())
    assert open_bundle(path).device("orin-nx-16gb").engines == []
    # on 11.1 the plan's DLA request degrades to a GPU build from the Q/DQ ONNX (strongly typed)
    (record,) = build_engines(path, device="orin-nx-16gb", detected=DETECTED, trt=make_standin("11.1"),
                              timing_cache=tmp_path / "t")
    assert record["key"]["dla_core"] is None and record["settings"]["network"] == "strongly-typed"
    assert record["onnx"] == open_bundle(path).device("orin-nx-16gb").artifacts["qdq_onnx"]

    # and selection expects what a build on 11.1 produces (the GPU engine), not the plan's DLA core
    on_11 = dict(DETECTED, jetpack=dict(JP62, tensorrt="11.1"))
    assert select_engine(open_bundle(path), device=on_11, tensorrt_version="11.1.0.106").key.dla_core is None
