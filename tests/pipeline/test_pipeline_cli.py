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


def test_bench_tunes_writes_config_json_and_skips_batches_the_engine_cannot_take(run_cli, static_model, tmp_path):
    out, png, cfg = tmp_path / "bench.json", tmp_path / "bench.png", tmp_path / "tuned.json"
    proc = run_cli("bench", static_model, "--batch", "1,2", "--delays-ms", "0,2", "--duration", "0.3", "--max-repeats", "2",
                   "--sla-p95-ms", "60", "--resolution", "0.2", "--json", "--out", out, "--plot", png, "--write-config", cfg)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # --json: stdout is only the JSON; progress went to stderr
    assert json.loads(out.read_text()) == result
    first = proc.stderr.splitlines()[0]
    assert first == f"bench: onnxruntime (CPUExecutionProvider) on cpu, bundle {static_model}", first
    assert "skipping batch 2: mean-b1.onnx (static batch 1" in proc.stderr and "searching for the knee" in proc.stderr
    assert {c["batch"] for c in result["candidates"]} == {1} and len(result["candidates"]) == 2
    best = result["best"]
    assert best["knee"]["p95_ms"] <= 60 < best["breaking"]["p95_ms"]
    # knees within --resolution (0.2) of the fastest count as equal, and the lowest P95 among them wins
    top = max(c["knee"]["throughput_fps"] for c in result["candidates"] if c["knee"])
    assert best["knee"]["throughput_fps"] >= 0.8 * top
    assert best["knee"]["p95_ms"] == min(c["knee"]["p95_ms"] for c in result["candidates"]
                                         if c["knee"] and c["knee"]["throughput_fps"] >= 0.8 * top)
    assert "best: batch 1" in proc.stderr and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from edgeinfer.pipeline.config import PipelineConfig

    tuned = PipelineConfig.from_file(cfg)
    assert (tuned.batch, tuned.max_delay_ms) == (1, best["max_delay_ms"]) and tuned.measured["p95_ms"] == best["knee"]["p95_ms"]
    assert tuned.model["id"] == result["model_id"] and tuned.machine["backend"] == "onnxruntime"
    assert tuned.measured["sla_p95_ms"] == 60 and len(tuned.measured["p95_spread_ms"]) == 2


def test_bench_refuses_a_batch_the_engine_cannot_take(run_cli, static_model, tmp_path):
    proc = run_cli("bench", static_model, "--batch", "2", "--sla-p95-ms", "50", "--out", tmp_path / "b.json")
    assert proc.returncode == 1 and not (tmp_path / "b.json").exists()
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "cannot benchmark batch 2" in err[0] and "static batch 1" in err[0] and "Traceback" not in proc.stderr
    proc = run_cli("bench", static_model, "--write-config", tmp_path / "c.json")
    assert proc.returncode == 2 and "needs --sla-p95-ms" in proc.stderr


def test_bench_sweep_without_sla_prints_points_and_best(run_cli, static_model):
    proc = run_cli("bench", static_model, "--batch", "1", "--delays-ms", "0", "--duration", "0.2", "--max-repeats", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bench: onnxruntime (CPUExecutionProvider) on cpu")
    assert sum("offered" in line for line in lines) == 3 and lines[-1].startswith("best: batch 1")


def test_bench_scenarios_report_pass_and_fail(run_cli, static_model, tmp_path):
    js, png = tmp_path / "sc.json", tmp_path / "sc.png"
    ok = run_cli("bench", static_model, "--scenario", "single", "--scenario", "burst", "--scenario", "sustained",
                 "--batch", "1", "--duration", "0.5", "--sla-p95-ms", "5000", "--out", js, "--plot", png)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(js.read_text())
    assert set(report["scenarios"]) == {"single", "burst", "sustained"}
    for sc in report["scenarios"].values():
        assert sc["pass"] and sc["p50_ms"] <= sc["p95_ms"] <= sc["p99_ms"] and sc["series"]
    assert ok.stdout.count("PASS") == 3 and png.stat().st_size > 10_000
    fail = run_cli("bench", static_model, "--scenario", "sustained", "--duration", "0.3", "--sla-p95-ms", "0.0001")
    assert fail.returncode == 1 and "FAIL (p95 >" in fail.stdout


def test_default_spool_is_per_destination(run_cli, static_model, tmp_path):
    """Records queued for an unreachable server stay in that server's spool: a later run that sends to a
    file must deliver its own 10 frames, not the 10 left over for the server (the default spool used to be
    one folder for every destination)."""
    import socket

    video = write_levels_video(tmp_path / "in.mp4", 12)
    env = {"HOME": str(tmp_path / "home"), "EDGEINFER_SPOOL": ""}
    with socket.socket() as s:  # a port nobody listens on: every send fails, records stay queued
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/results"
    first = run_cli("run", static_model, "--source", video, "--max-frames", "10", "--backend", "onnxruntime",
                    "--uplink", dead, env=env)
    assert first.returncode == 0, first.stderr
    results = tmp_path / "results.jsonl"
    second = run_cli("run", static_model, "--source", video, "--max-frames", "10", "--backend", "onnxruntime",
                     "--uplink", f"file://{results}", env=env)
    assert second.returncode == 0, second.stderr
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    flat = [r for rec in records for r in (rec if isinstance(rec, list) else [rec])]
    assert len(flat) == 10, len(flat)
    spools = sorted(p.name for p in (tmp_path / "home" / ".cache" / "edgeinfer" / "spool").iterdir())
    assert len(spools) == 2 and spools[0].startswith("file-") and spools[1].startswith("http-"), spools
