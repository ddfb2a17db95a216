"""`edgeinfer run` and `edgeinfer bench` end to end: real CLI subprocess, real ONNX Runtime, real files."""
from __future__ import annotations

import json

import pytest
from pipeline_helpers import build_mean_onnx, write_levels_video

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def static_model(tmp_path_factory):
    # batch fixed at 1: what a static YOLO export looks like to edgeinfer.load
    return build_mean_onnx(tmp_path_factory.mktemp("cli") / "mean-b1.onnx", batch=1)


def test_run_writes_video_stats_and_uplink_records(run_cli, static_model, tmp_path):
    video = write_levels_video(tmp_path / "in.mp4", 30)
    out, stats_path, results = tmp_path / "out.mp4", tmp_path / "stats.json", tmp_path / "results.jsonl"
    proc = run_cli("run", static_model, "--source", video, "--max-frames", "20", "--sink", f"file://{out}",
                   "--backend", "onnxruntime", "--uplink", f"file://{results}", "--uplink-spool", tmp_path / "spool",
                   "--stats", stats_path, "--status-interval", "0.2", "--sink-lossless")
    assert proc.returncode == 0, proc.stderr
    assert "frames: 20 out of 20" in proc.stdout and "end-to-end latency: p50" in proc.stdout
    # the first line says what runs, before any frame output
    first = proc.stdout.splitlines()[0]
    assert first.startswith("run: onnxruntime (CPUExecutionProvider) on cpu | model mean-b1@"), proc.stdout
    assert first.endswith("| 1 source")
    stats = json.loads(stats_path.read_text())
    up = stats["uplink"]  # the summary says what the uplink did, from the same stats
    assert f"uplink: {up['sent']} sent, {up['queued']} queued, {up['dropped_total']} dropped" in proc.stdout
    assert stats["frames_out"] == 20 and stats["instances"][0]["backend"] == "onnxruntime" and stats["drops"]["total"] == 0
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    flat = [r for rec in records for r in (rec if isinstance(rec, list) else [rec])]
    frames = sorted({r.get("frame_index", r.get("record", {}).get("frame_index")) for r in flat})
    assert frames == list(range(20))


def test_run_json_is_the_stats_on_stdout_and_says_the_backend(run_cli, static_model, tmp_path):
    video = write_levels_video(tmp_path / "in.mp4", 12)
    stats_path = tmp_path / "stats.json"
    proc = run_cli("run", static_model, "--source", video, "--source", video, "--max-frames", "5",
                   "--backend", "onnxruntime", "--json", "--stats", stats_path, "--status-interval", "0.1")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # stdout is the JSON and nothing else
    assert data["frames_out"] == 10
    assert (data["backend"], data["provider"], data["device"]) == ("onnxruntime", "CPUExecutionProvider", "cpu")
    assert data["engines"][0]["model_id"].startswith("mean-b1@") and "ONNX Runtime" in data["engines"][0]["reason"]
    assert json.loads(stats_path.read_text()) == data
    # human lines moved to stderr: the start line first, then the summary
    lines = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run: "))
    assert lines[start].endswith("| 2 sources")
    assert start < next(i for i, line in enumerate(lines) if line.startswith("frames: 10 out of 10"))


def test_run_stats_json_is_a_deprecated_alias_of_stats(run_cli, static_model, tmp_path):
    video = write_levels_video(tmp_path / "in.mp4", 5)
    old = tmp_path / "old.json"
    proc = run_cli("run", static_model, "--source", video, "--backend", "onnxruntime", "--stats-json", old)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(old.read_text())["frames_out"] == 5
    assert "--stats-json is deprecated" in proc.stderr and "use --stats FILE" in proc.stderr
    help_text = run_cli("run", "--help").stdout
    assert "--stats FILE" in help_text and "--stats-json" not in help_text
    both = run_cli("run", static_model, "--source", video, "--stats", tmp_path / "a.json", "--stats-json", old)
    assert both.returncode == 2 and "give one of them" in both.stderr


def test_run_usage_and_user_errors(run_cli, static_model, tmp_path):
    video = write_levels_video(tmp_path / "in.mp4", 5)
    bad = run_cli("run", static_model, "--source", video, "--batch", "0")
    assert bad.returncode == 2 and "--batch" in bad.stderr
    missing = run_cli("run", static_model, "--source", tmp_path / "nope.mp4")
    assert missing.returncode == 1 and "error: source file" in missing.stderr and "Traceback" not in missing.stderr
    headless = run_cli("run", static_model, "--source", video, "--sink", "display://0", env={"DISPLAY": ""})
    assert headless.returncode == 1 and "display sink unavailable" in headless.stderr


def test_bench_sweep_finds_best_under_sla_and_plots(run_cli, static_model, tmp_path):
    js, png = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = run_cli("bench", static_model, "--batch", "1,2", "--delays-ms", "0,2", "--duration", "0.4",
                   "--sla-p95-ms", "2000", "--json", js, "--plot", png)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(js.read_text())
    assert len(result["points"]) == 2 * 2 * 3 and result["best"]["meets_sla"]
    assert result["best"]["throughput_fps"] == max(p["throughput_fps"] for p in result["points"] if p["meets_sla"])
    assert "best: batch" in proc.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_scenarios_report_pass_and_fail(run_cli, static_model, tmp_path):
    js, png = tmp_path / "sc.json", tmp_path / "sc.png"
    ok = run_cli("bench", static_model, "--scenario", "single", "--scenario", "burst", "--scenario", "sustained",
                 "--batch", "2", "--duration", "0.5", "--sla-p95-ms", "5000", "--json", js, "--plot", png)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(js.read_text())
    assert set(report["scenarios"]) == {"single", "burst", "sustained"}
    for sc in report["scenarios"].values():
        assert sc["pass"] and sc["p50_ms"] <= sc["p95_ms"] <= sc["p99_ms"] and sc["series"]
    assert ok.stdout.count("PASS") == 3 and png.stat().st_size > 10_000
    fail = run_cli("bench", static_model, "--scenario", "sustained", "--duration", "0.3", "--sla-p95-ms", "0.0001")
    assert fail.returncode == 1 and "FAIL (p95 >" in fail.stdout
