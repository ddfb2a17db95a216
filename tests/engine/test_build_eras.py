"""Drive the real builder through each TensorRT era with the table-generated stand-in and check
the calls and flags it makes. (Proves API use per version; says nothing about real engines.)"""
from __future__ import annotations

import pytest
from trt_standin import make_standin

from edgeinfer.engine import trt_shim
from edgeinfer.engine.builder import BuildSpec, build_engine
from edgeinfer.errors import BuildError

SHAPES = {"images": (1, 3, 32, 32)}
WEAK_ERAS = ["8.5", "8.6", "10.3", "10.16"]


def _calls(trt, name):
    return [args for call, args in trt.calls if call == name]


def _flags(trt):
    return sorted(args[0].name for args in _calls(trt, "IBuilderConfig.set_flag"))


def _network_flags(trt):
    (flags,) = _calls(trt, "Builder.create_network")[0]
    return sorted(v.name for v in trt.NetworkDefinitionCreationFlag.__members__.values() if flags & (1 << int(v)))


@pytest.mark.parametrize("version", WEAK_ERAS)
def test_fp16_gpu(version, model_files, tmp_path):
    trt = make_standin(version)
    result = build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES,
                                    workspace_mb=256, timing_cache=tmp_path / "t.cache"), trt=trt)
    assert _flags(trt) == ["FP16"]
    assert _network_flags(trt) == (["EXPLICIT_BATCH"] if version.startswith("8.") else [])
    pool, size = _calls(trt, "IBuilderConfig.set_memory_pool_limit")[0]
    assert (pool.name, size) == ("WORKSPACE", 256 << 20)
    assert _calls(trt, "IBuilderConfig.profiling_verbosity=") == [(trt.ProfilingVerbosity.DETAILED,)]
    assert _calls(trt, "IBuilderConfig.builder_optimization_level=") == ([] if version == "8.5" else [(3,)])
    assert _calls(trt, "IBuilderConfig.int8_calibrator=") == []
    assert _calls(trt, "IBuilderConfig.DLA_core=") == []
    assert result.tensorrt_version.startswith(version)
    assert [name for name, _, _ in result.io] == ["images", "output0"]


@pytest.mark.parametrize("version", WEAK_ERAS)
def test_int8_with_the_bundle_cache(version, model_files, tmp_path):
    trt = make_standin(version)
    result = build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="int8", input_shapes=SHAPES,
                                    calib_cache=model_files["cache"]), trt=trt)
    assert _flags(trt) == ["FP16", "INT8"]
    (calibrator,) = _calls(trt, "IBuilderConfig.int8_calibrator=")[0]
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
    # TensorRT gets the bundle's scales, with the header set to the running version
    cache = calibrator.read_calibration_cache().decode()
    original = model_files["cache"].read_text().splitlines()
    code = trt_shim.trt_version_code(trt_shim.version_tuple(trt))
    assert cache.splitlines() == [f"TRT-{code}-EntropyCalibration2"] + original[1:]
    assert calibrator.get_batch(["images"]) is None  # never calibrates on data: the cache is read-only
    assert result.settings["precision_flags"] == ["fp16", "int8"]


@pytest.mark.parametrize("version", WEAK_ERAS + ["11.4"])
def test_dla0_with_gpu_fallback_and_pins(version, model_files):
    trt = make_standin(version)
    onnx = model_files["qdq" if version == "11.4" else "fp32"]
    cache = None if version == "11.4" else model_files["cache"]
    result = build_engine(BuildSpec(onnx_path=onnx, precision="int8", input_shapes=SHAPES, calib_cache=cache,
                                    dla_core=0, gpu_layers=("/model.23/Reshape",)), trt=trt)
    assert _calls(trt, "IBuilderConfig.default_device_type=") == [(trt.DeviceType.DLA,)]
    assert _calls(trt, "IBuilderConfig.DLA_core=") == [(0,)]
    assert "GPU_FALLBACK" in _flags(trt)
    (layer, device), = _calls(trt, "IBuilderConfig.set_device_type")
    assert (layer.name, device) == ("/model.23/Reshape", trt.DeviceType.GPU)
    assert _calls(trt, "Runtime.DLA_core=") == [(0,)]  # deserialized on the core it was built for
    assert result.layer_info["Layers"][0 if version != "11.4" else 2]["Name"].startswith("{ForeignNode[")


def test_dla_on_trt_11_1_is_refused(model_files):
    with pytest.raises(BuildError, match="DLA is not available in TensorRT 11.1"):
        build_engine(BuildSpec(onnx_path=model_files["qdq"], precision="int8", input_shapes=SHAPES, dla_core=0),
                     trt=make_standin("11.1"))


def test_dla_core_beyond_the_device_is_refused(model_files):
    trt = make_standin("10.3", dla_cores=1)
    with pytest.raises(BuildError, match="DLA core 1 requested but this device has 1"):
        build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES, dla_core=1), trt=trt)


@pytest.mark.parametrize("version, onnx_kind", [("10.3", "qdq"), ("10.16", "fp16"), ("11.1", "qdq"), ("11.1", "fp16"),
                                                ("11.4", "qdq")])
def test_strongly_typed(version, onnx_kind, model_files):
    trt = make_standin(version)
    precision = "int8" if onnx_kind == "qdq" else "fp16"
    build_engine(BuildSpec(onnx_path=model_files[onnx_kind], precision=precision, input_shapes=SHAPES,
                           strongly_typed=version.startswith("10.")), trt=trt)
    assert _network_flags(trt) == ["STRONGLY_TYPED"]
    assert [f for f in _flags(trt) if f in ("FP16", "INT8")] == []
    assert _calls(trt, "IBuilderConfig.int8_calibrator=") == []
    assert _calls(trt, "OnnxParser.parse_from_file") == [(str(model_files[onnx_kind]),)]


def test_trt11_refuses_a_calibration_cache(model_files):
    with pytest.raises(BuildError, match="strongly typed"):
        build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="int8", input_shapes=SHAPES,
                               calib_cache=model_files["cache"]), trt=make_standin("11.1"))


def test_strongly_typed_on_8x_is_refused(model_files):
    with pytest.raises(BuildError, match="strongly typed networks is not available in TensorRT 8.6"):
        build_engine(BuildSpec(onnx_path=model_files["qdq"], precision="int8", input_shapes=SHAPES,
                               strongly_typed=True), trt=make_standin("8.6"))


def test_timing_cache_is_loaded_and_saved(model_files, tmp_path):
    cache_file = tmp_path / "timing.cache"
    cache_file.write_bytes(b"previous")
    trt = make_standin("10.3")
    build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES,
                           timing_cache=cache_file), trt=trt)
    assert _calls(trt, "IBuilderConfig.create_timing_cache") == [(b"previous",)]
    assert cache_file.read_bytes() == b"previous+tactics"  # what the builder's cache serialized to


def test_mismatching_timing_cache_is_replaced(model_files, tmp_path):
    cache_file = tmp_path / "timing.cache"
    cache_file.write_bytes(b"foreign device")
    trt = make_standin("10.16")
    build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES,
                           timing_cache=cache_file), trt=trt)
    assert _calls(trt, "IBuilderConfig.create_timing_cache") == [(b"foreign device",), (b"",)]
    assert cache_file.read_bytes() == b"+tactics"


def test_failed_build_names_tensorrt_errors(model_files, tmp_path):
    trt = make_standin("10.3", fail_build="Could not find any implementation for node {ForeignNode[x...y]}")
    cache_file = tmp_path / "timing.cache"
    with pytest.raises(BuildError, match="Could not find any implementation"):
        build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES,
                               timing_cache=cache_file), trt=trt)
    assert not cache_file.exists()  # nothing written for a failed build


def test_tensorrt_82_jetpack4_is_refused_with_the_manual_route(model_files):
    class Trt82:
        __version__ = "8.2.1.8"

    with pytest.raises(BuildError, match="JetPack 4") as info:
        build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES), trt=Trt82())
    assert "trtexec" in str(info.value)


def test_one_logger_per_process_so_a_later_failed_build_still_names_its_error(model_files):
    # TensorRT keeps the first logger it was given (NVIDIA/TensorRT #1475); the stand-in does the same.
    trt = make_standin("10.3")
    spec = BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES)
    build_engine(spec, trt=trt)
    trt.standin_state.fail_build = "Could not find any implementation for node /model.0/conv/Conv"
    with pytest.raises(BuildError, match="Could not find any implementation for node /model.0/conv/Conv"):
        build_engine(spec, trt=trt)
    given = [args[0] for call, args in trt.calls if call in ("Builder()", "Runtime()")]
    given += [args[1] for call, args in trt.calls if call == "OnnxParser()"]
    assert len(given) == 5 and len({id(logger) for logger in given}) == 1  # 2 builders, 2 parsers, 1 runtime
    trt.standin_state.fail_build = "second failure"
    with pytest.raises(BuildError) as info:
        build_engine(spec, trt=trt)
    assert "Could not find" not in str(info.value)  # only this build's errors are quoted


def test_corrupt_timing_cache_starts_a_new_one(model_files, tmp_path):
    cache_file = tmp_path / "timing.cache"
    cache_file.write_bytes(b"corrupt: half-written by a killed build")
    trt = make_standin("10.3")
    build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="fp16", input_shapes=SHAPES,
                           timing_cache=cache_file), trt=trt)
    assert _calls(trt, "IBuilderConfig.create_timing_cache")[-1] == (b"",)
    assert cache_file.read_bytes() == b"+tactics"


class _Engine:
    device_memory_size = 4096  # TensorRT 10.0's ICudaEngine: no device_memory_size_v2 yet


@pytest.mark.parametrize("version", ["8.6.2.3", "10.0.1.6"])
def test_device_memory_size_before_10_1_uses_the_old_property(version):
    class Trt:
        __version__ = version

    assert trt_shim.device_memory_size(Trt(), _Engine()) == 4096
    with pytest.raises(BuildError, match=f"device_memory_size_v2 is not available in TensorRT {version}"):
        trt_shim._device_memory_v2(Trt(), _Engine())


@pytest.mark.parametrize("version", WEAK_ERAS)
def test_float_layers_get_fp16_and_obey_precision_constraints(version, model_files):
    trt = make_standin(version)
    result = build_engine(BuildSpec(onnx_path=model_files["fp32"], precision="int8", input_shapes=SHAPES,
                                    calib_cache=model_files["cache"], float_layers=("/model.1/conv/Conv", "/gone")), trt=trt)
    assert _calls(trt, "ILayer.precision=") == [(trt.DataType.HALF,)]  # only the layer that exists
    assert "OBEY_PRECISION_CONSTRAINTS" in _flags(trt)
    assert result.settings["float_layers"] == ["/model.1/conv/Conv"]


def test_float_layers_are_left_alone_in_strongly_typed_builds(model_files):
    trt = make_standin("11.1")
    build_engine(BuildSpec(onnx_path=model_files["qdq"], precision="int8", input_shapes=SHAPES,
                           float_layers=("/model.1/conv/Conv",)), trt=trt)
    assert not [c for c, _ in trt.calls if c == "ILayer.precision="]
