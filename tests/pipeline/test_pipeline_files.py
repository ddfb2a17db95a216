"""File sources end to end with real ONNX Runtime: lossless order, sinks, batching, instances, errors."""
from __future__ import annotations

import time

import numpy as np
import pytest
from pipeline_helpers import FailingModel, OrtMeanModel, level, mean_of, write_levels_video

from edgeinfer.errors import BackendError, ConfigError, SourceError
from edgeinfer.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.timeout(120)


def _check_content(results):
    for r in results:
        assert abs(mean_of(r) - level(r.frame_index)) < 12.0, (r.source_id, r.frame_index, mean_of(r))


def test_file_source_is_lossless_and_ordered(mean_onnx, levels_video):
    with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    assert [r.frame_index for r in results] == list(range(60))
    _check_content(results)
    assert stats["frames_out"] == 60 and stats["drops"]["total"] == 0
    assert stats["sources"]["0"]["state"] == "ended"
    e2e = stats["latency"]["end_to_end"]
    assert e2e["count"] == 60 and 0 < e2e["p50_ms"] <= e2e["p95_ms"] <= e2e["p99_ms"]
    assert not p.running and stats["leaked_threads"] == []


def test_file_uri_with_slow_consumer_still_gets_every_frame(mean_onnx, levels_video):
    got = []
    with Pipeline(OrtMeanModel(mean_onnx), sources=[f"file://{levels_video}"], telemetry=None, result_queue=2) as p:
        for r in p:
            got.append(r.frame_index)
            time.sleep(0.005)  # back-pressure reaches capture; nothing is dropped
    assert got == list(range(60))


def test_image_folder_source(mean_onnx, tmp_path):
    import cv2

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"img_{i:02d}.png"), np.full((40, 50, 3), level(i), np.uint8))
    with Pipeline(OrtMeanModel(mean_onnx), sources=[str(tmp_path)], return_frames=True, telemetry=None) as p:
        results = list(p)
    assert [r.frame_index for r in results] == list(range(5))
    _check_content(results)
    assert results[3].frame.shape == (40, 50, 3) and int(results[3].frame[0, 0, 0]) == level(3)


def test_h264_file_made_by_ffmpeg(mean_onnx, tmp_path):
    import subprocess

    import imageio_ffmpeg

    out = tmp_path / "h264.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
                    "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=60)
    with Pipeline(OrtMeanModel(mean_onnx), sources=[out], telemetry=None) as p:
        assert len(list(p)) == 30


def test_file_sink_writes_annotated_video_and_callback_sink(mean_onnx, levels_video, tmp_path):
    import cv2

    seen = []
    out = tmp_path / "out.mp4"
    with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], sink=[f"file://{out}", lambda r, img: seen.append(img.copy())],
                  sink_queue=64, telemetry=None) as p:
        p.run()
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    cap.release()
    assert frames == 60 and ok
    # the box drawn on the frame border makes the annotated picture differ from the flat input
    assert img.std() > 5 and len(seen) == 60 and seen[0].std() > 5
    assert not list(tmp_path.glob(".out.mp4.*"))  # the temp file was moved into place
    assert out.stat().st_mode & 0o044  # normal permissions (not mkstemp's 0600)


def test_slow_sink_drops_but_never_stalls_inference(mean_onnx, levels_video):
    def slow(result, image):
        time.sleep(0.05)

    with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], sink=slow, sink_queue=2, telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    assert len(results) == 60  # inference and the results stream got every frame
    assert stats["drops"]["sink"] > 0 and stats["drops"]["source_queue"] == {"0": 0}


def test_on_result_callback_style(mean_onnx, levels_video):
    got = []
    stats = Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], on_result=lambda r: got.append(r.frame_index),
                     max_frames=25, telemetry=None).run(timeout=60)
    assert got == list(range(25)) and stats["frames_out"] == 25


def test_batching_respects_max_batch(mean_onnx, tmp_path):
    a = write_levels_video(tmp_path / "a.mp4", 40)
    b = write_levels_video(tmp_path / "b.mp4", 40)
    model = OrtMeanModel(mean_onnx)
    with Pipeline(model, sources={"a": a, "b": b}, batch=4, max_delay_ms=50, queue_size=4, telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    for sid in "ab":
        assert [r.frame_index for r in results if r.source_id == sid] == list(range(40))
    _check_content(results)
    sizes = {r.batch_size for r in results}
    assert max(sizes) == 4 and sizes <= {1, 2, 3, 4}
    assert stats["batch"]["mean_size"] > 2.0 and model.calls == stats["batch"]["batches"]


def test_multi_instance_results_are_reordered_per_source(mean_onnx, tmp_path):
    a = write_levels_video(tmp_path / "a.mp4", 30)
    fast, slow = OrtMeanModel(mean_onnx, name="gpu"), OrtMeanModel(mean_onnx, delay=0.03, name="dla0")
    with Pipeline([fast, slow], sources=[a], batch=2, max_delay_ms=1, telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    assert [r.frame_index for r in results] == list(range(30))
    _check_content(results)
    assert {r.instance for r in results} == {"gpu#0", "dla0#1"}
    assert stats["reordered"] > 0 and len(stats["instances"]) == 2


def test_runtime_failure_fails_over_to_fallback(mean_onnx, levels_video, caplog):
    broken = FailingModel(mean_onnx, ok_batches=5)
    fallback = OrtMeanModel(mean_onnx)
    with Pipeline(broken, sources=[levels_video], fallback=fallback, telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    assert [r.frame_index for r in results] == list(range(60))
    _check_content(results)
    assert stats["failover"]["active"] and stats["failover"]["events"][0]["from"] == "tensorrt"
    assert stats["instances"][0]["backend"] == "onnxruntime" and fallback.calls == 55
    assert any("switching to the fallback backend" in rec.message for rec in caplog.records)


def test_runtime_failure_without_fallback_stops_with_the_error(mean_onnx, levels_video):
    got = []
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match="illegal memory access"):
        with Pipeline(FailingModel(mean_onnx, ok_batches=3), sources=[levels_video], telemetry=None) as p:
            for r in p:
                got.append(r)
    assert len(got) == 3 and time.perf_counter() - t0 < 20
    assert p.stats()["leaked_threads"] == []


def test_sink_exception_reaches_the_caller(mean_onnx, levels_video):
    def bad_sink(result, image):
        raise ValueError("disk on fire")

    with pytest.raises(ValueError, match="disk on fire"):
        with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], sink=bad_sink, telemetry=None) as p:
            for _ in p:
                pass


def test_close_mid_stream_is_prompt_and_joins(mean_onnx, tmp_path):
    video = write_levels_video(tmp_path / "loop.mp4", 10)
    p = Pipeline(OrtMeanModel(mean_onnx), sources=[video], loop=True, telemetry=None, join_timeout=5)
    count = 0
    for _ in p:
        count += 1
        if count == 40:  # past the end of the 10-frame file: looping works
            break
    t0 = time.perf_counter()
    p.close()
    assert time.perf_counter() - t0 < 5
    stats = p.stats()
    assert stats["leaked_threads"] == [] and not p.running and stats["frames_in"] >= 40


def test_bad_inputs_are_clear_errors(mean_onnx, tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        Pipeline(OrtMeanModel(mean_onnx), sources=[tmp_path / "missing.mp4"])
    with pytest.raises(ConfigError, match="batch"):
        Pipeline(OrtMeanModel(mean_onnx), sources=["x"], batch=0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot decode"):
        with Pipeline(OrtMeanModel(mean_onnx), sources=[broken], telemetry=None) as p:
            list(p)


def test_stats_metrics_endpoint_and_status_line(mean_onnx, levels_video):
    import urllib.request

    from edgeinfer.pipeline.stats import status_line

    with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], metrics_port=0, telemetry="auto") as p:
        results = list(p)
        body = urllib.request.urlopen(p.metrics_url, timeout=10).read().decode()
        stats = p.stats()
    assert len(results) == 60 and "edgeinfer_frames_out_total 60" in body
    line = status_line(stats)
    assert "frames 60" in line and "FPS" in line
    assert stats["telemetry"]["source"] == "not available" and stats["telemetry"]["fps_per_watt"] is None
    for stage in ("capture", "queue", "infer", "end_to_end"):
        assert stats["latency"][stage]["p95_ms"] is not None


def test_model_path_loads_instances_through_edgeinfer_load(tmp_path):
    from pipeline_helpers import build_mean_onnx

    import edgeinfer

    model_path = build_mean_onnx(tmp_path / "b1.onnx", batch=1)
    video = write_levels_video(tmp_path / "v.mp4", 12)
    with edgeinfer.Pipeline(str(model_path), sources=[video], instances="ort,ort", fallback="onnxruntime",
                            telemetry=None) as p:
        results = list(p)
        stats = p.stats()
    assert [r.frame_index for r in results] == list(range(12))
    assert [i["backend"] for i in stats["instances"]] == ["onnxruntime", "onnxruntime"]
    assert {r.instance for r in results} <= {"ort#0", "ort#1"}
    assert isinstance(results[0].detections, dict) and "output0" in results[0].detections  # generic model: raw outputs
    with pytest.raises(ConfigError, match="unknown engine instance"):
        Pipeline(str(model_path), sources=[video], instances="gpu,tpu")


def test_importing_the_pipeline_loads_no_heavy_modules():
    import subprocess
    import sys

    code = ("import sys, edgeinfer, edgeinfer.pipeline.pipeline, edgeinfer.telemetry.jetson; "
            "heavy = [m for m in ('cv2', 'onnxruntime', 'torch', 'tensorrt', 'matplotlib') if m in sys.modules]; "
            "assert edgeinfer.Pipeline is edgeinfer.pipeline.pipeline.Pipeline; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_on_result_exception_reaches_the_caller(mean_onnx, levels_video):
    def callback(result):
        if result.frame_index == 7:
            raise KeyError("bad record")

    with pytest.raises(KeyError, match="bad record"):
        Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], on_result=callback, telemetry=None).run(timeout=60)


def test_fps_per_watt_from_jetson_sysfs_telemetry(mean_onnx, levels_video, tmp_path):
    from edgeinfer.telemetry.jetson import JetsonTelemetry

    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    hw.mkdir(parents=True)
    (hw / "in1_label").write_text("VDD_IN\n")
    (hw / "in1_input").write_text("5000\n")  # mV
    (hw / "curr1_input").write_text("2000\n")  # mA -> 10 W
    tel = JetsonTelemetry(source="sysfs", root=str(tmp_path))
    with Pipeline(OrtMeanModel(mean_onnx), sources=[levels_video], loop=True, telemetry=tel, result_queue=4) as p:
        for i, _ in enumerate(p):
            if i == 40:
                break
        time.sleep(0.2)
        stats = p.stats()
    t = stats["telemetry"]
    assert t["source"] == "sysfs" and t["power_w"] == 10.0
    assert t["fps_per_watt"] == pytest.approx(stats["fps"] / 10.0, rel=0.2)


def test_busy_metrics_port_is_a_clear_error(mean_onnx, levels_video):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        model = OrtMeanModel(mean_onnx)
        with pytest.raises(ConfigError, match="cannot serve metrics") as info:
            with Pipeline(model, sources=[levels_video], metrics_port=port, telemetry=None):
                pass
    assert "--metrics-port" in info.value.hint


def test_file_sink_writes_one_video_per_source_losslessly_when_asked(mean_onnx, tmp_path):
    import cv2

    a = write_levels_video(tmp_path / "a.mp4", 15)
    b = write_levels_video(tmp_path / "b.mp4", 10, size=(96, 64))
    out = tmp_path / "out.mp4"
    with Pipeline(OrtMeanModel(mean_onnx), sources={"a": a, "b": b}, sink=f"file://{out}", sink_queue=1,
                  sink_lossless=True, batch=2, telemetry=None) as p:
        p.run()
    counts = {}
    for sid in "ab":
        cap = cv2.VideoCapture(str(tmp_path / f"out_{sid}.mp4"))
        counts[sid] = (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        cap.release()
    assert counts == {"a": (15, 160), "b": (10, 96)} and p.stats()["drops"]["sink"] == 0
