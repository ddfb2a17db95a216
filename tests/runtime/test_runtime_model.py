"""edgeinfer.load on real ONNX files with real ONNX Runtime: detections, selection messages, errors."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import edgeinfer
from edgeinfer.errors import BackendError, ConfigError, MissingDependencyError, ModelError
from edgeinfer.model.info import PreprocessSpec
from edgeinfer.runtime.preprocess import Preprocessor


def _frame(seed=0, shape=(480, 640, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_plain_onnx_agrees_with_ultralytics(random_yolo11n_onnx):
    """Same ONNX, same frame: our letterbox + decode + NMS + mapping == Ultralytics' predict."""
    from ultralytics import YOLO

    conf = 5e-5  # random weights score ~1e-4: a low threshold keeps real NMS work in play
    frame = _frame()
    with edgeinfer.load(random_yolo11n_onnx, device="cpu", conf=conf, iou=0.45, warmup=1) as model:
        assert model.backend_name == "onnxruntime"
        assert model.info.output_layout == "yolov8" and len(model.names) == 80
        ours = model(frame)
    ref = YOLO(str(random_yolo11n_onnx), task="detect").predict(frame, conf=conf, iou=0.45, imgsz=320,
                                                                verbose=False)[0].boxes
    assert len(ours) == len(ref) > 0
    np.testing.assert_allclose(ours.xyxy, ref.xyxy.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.confidence, ref.conf.numpy(), rtol=1e-5)
    assert ours.image_shape == (480, 640)


def test_infer_batch_matches_single_calls(random_yolo11n_onnx):
    frames = [_frame(1), _frame(2, (300, 500, 3)), _frame(3, (720, 1280, 3))]
    with edgeinfer.load(random_yolo11n_onnx, device="cpu", conf=5e-5, warmup=0) as model:
        singles = [model(f) for f in frames]
        batch = model.infer_batch(frames)
    assert len(batch) == 3
    for a, b in zip(singles, batch):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        assert a.image_shape == b.image_shape


def test_selection_reason_is_logged(random_yolo11n_onnx, caplog):
    with caplog.at_level(logging.INFO, logger="edgeinfer.runtime"):
        model = edgeinfer.load(random_yolo11n_onnx, device="cpu", warmup=0)
    assert "plain ONNX file has no TensorRT engine" in model.backend_reason
    assert "CPUExecutionProvider" in model.backend_reason
    assert any("loaded" in r.message and "onnxruntime" in r.message for r in caplog.records)
    model.close()


def test_tensorrt_requested_for_plain_onnx_explains(random_yolo11n_onnx):
    with pytest.raises(MissingDependencyError, match="TensorRT backend cannot run this model") as info:
        edgeinfer.load(random_yolo11n_onnx, backend="tensorrt")
    assert "edgeinfer build" in info.value.hint


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(backend="openvino"), ConfigError, "not one of"),
    (dict(device="tpu"), ConfigError, "not one of"),
    (dict(conf=2.0), ConfigError, "outside 0..1"),
])
def test_bad_load_arguments(random_yolo11n_onnx, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        edgeinfer.load(random_yolo11n_onnx, warmup=0, **kwargs)


def test_missing_and_wrong_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        edgeinfer.load(tmp_path / "nope.onnx")
    text = tmp_path / "model.txt"
    text.write_text("hello")
    with pytest.raises(ModelError, match="neither an .onnx file nor a bundle"):
        edgeinfer.load(text)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(BackendError, match="could not load broken.onnx"):
        edgeinfer.load(broken)


def test_bad_frames_and_closed_model(random_yolo11n_onnx):
    model = edgeinfer.load(random_yolo11n_onnx, device="cpu", warmup=0)
    with pytest.raises(ConfigError, match="dtype is float64"):
        model(np.zeros((10, 10, 3)))
    with pytest.raises(ConfigError, match="empty"):
        model(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ConfigError, match="expected \\(height, width, 3\\)"):
        model.infer_batch([np.zeros((10, 10), np.uint8)])
    with model:
        pass
    with pytest.raises(BackendError, match="closed"):
        model(_frame())


def test_generic_model_returns_raw_outputs(generic_onnx):
    frame = _frame(4, (64, 96, 3))
    with edgeinfer.load(generic_onnx, device="cpu", warmup=1) as model:
        assert model.info.task == "generic"
        out = model(frame)
        again = model(frame)
    expected = np.empty((3, 32, 48), np.float32)
    Preprocessor(PreprocessSpec(), (32, 48))(frame, out=expected)
    np.testing.assert_allclose(out["scaled"], 2 * expected + 1, rtol=1e-6)
    assert out["scaled"] is not again["scaled"]  # results are copies, not the backend's reused buffer


def test_demo_model_finds_the_shapes():
    """The committed demo detector on generated scenes: every true shape found with the right class."""
    from edgeinfer.demo import demo_model_path, render_scene

    try:
        path = demo_model_path("onnx")
    except ModelError:
        pytest.skip("demo model not committed yet (engineer D is training it)")
    hits = total = 0
    with edgeinfer.load(path, device="cpu", warmup=0) as model:
        for seed in range(5):
            img, boxes = render_scene([7, 7, seed], imgsz=320)
            canvas = np.full((480, 640, 3), 90, np.uint8)
            canvas[80:400, 160:480] = img  # off-centre, non-square frame: exercises the letterbox mapping
            dets = model(canvas)
            for cls, x1, y1, x2, y2 in boxes:
                total += 1
                truth = np.array([x1 + 160, y1 + 80, x2 + 160, y2 + 80], np.float32)
                ious = [_iou(truth, d) for d in dets.xyxy]
                if ious and max(ious) > 0.5 and dets.class_id[int(np.argmax(ious))] == cls:
                    hits += 1
    assert hits / total >= 0.8, f"{hits}/{total} shapes found"


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """A real bundle (BundleWriter) holding the demo detector's ONNX for one Orin profile, no engines."""
    import dataclasses

    from edgeinfer.bundle import BundleWriter
    from edgeinfer.demo import demo_model_path
    from edgeinfer.profiles import get_profile
    from edgeinfer.runtime.onnx_info import info_from_session
    from edgeinfer.runtime.ort_backend import OnnxRuntimeBackend

    try:
        onnx_path = demo_model_path("onnx")
    except ModelError:
        pytest.skip("demo model not committed yet (engineer D is training it)")
    be = OnnxRuntimeBackend(onnx_path, device="cpu")
    info = info_from_session(be.session, be.inputs, be.outputs, source=onnx_path.name)
    be.close()
    profile = get_profile("orin-nx-16gb")
    out = tmp_path_factory.mktemp("bundle") / "shapes.bundle"
    with BundleWriter(out) as w:
        rel = w.add_artifact(onnx_path)
        w.set_model(info=info.to_dict(), name=onnx_path.name, source_sha256="0" * 64)
        w.add_device(profile.name, profile=profile.to_dict(), jetpack=dataclasses.asdict(profile.latest_jetpack),
                     precision="fp16", artifacts={"onnx": rel}, placement={}, recipes={})
    return out


def test_bundle_without_tensorrt_falls_back_to_onnxruntime(demo_bundle):
    from edgeinfer.demo import CLASS_NAMES, render_scene

    with edgeinfer.load(demo_bundle, device="cpu", warmup=1) as model:
        assert model.backend_name == "onnxruntime"
        assert model.backend_reason.startswith("TensorRT is not installed here; using ONNX Runtime")
        assert model.names == dict(enumerate(CLASS_NAMES))  # from the bundle's manifest
        scene, boxes = render_scene([5, 5, 5], imgsz=320)
        dets = model(scene)
    assert len(dets) >= len(boxes) - 1 and set(dets.class_id.tolist()) <= {0, 1, 2}


def test_bundle_forced_tensorrt_names_the_reason(demo_bundle):
    with pytest.raises(MissingDependencyError, match="TensorRT is not installed here"):
        edgeinfer.load(demo_bundle, backend="tensorrt")
