"""Tuned configs: the file format, `Pipeline(config=...)` and `edgeinfer run --config` really use its knobs.

Real ONNX Runtime (the mean model with a dynamic batch, so batching shows in the results) and real videos.
"""
from __future__ import annotations

import json
import logging

import pytest
from pipeline_helpers import build_mean_onnx, write_levels_video

import edgeinfer
from edgeinfer.errors import ConfigError
from edgeinfer.pipeline.config import PipelineConfig
from edgeinfer.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def dyn_model(tmp_path_factory):
    return build_mean_onnx(tmp_path_factory.mktemp("cfg") / "mean-dyn.onnx")  # batch "N": any batch size


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfgvid")
    return {"a": write_levels_video(d / "a.mp4", 40), "b": write_levels_video(d / "b.mp4", 40)}


def test_config_file_round_trips_and_rejects_unknown_keys(tmp_path):
    cfg = PipelineConfig(batch=4, max_delay_ms=2.5, instances="2", queue_size=4, model={"id": "m@0123456789ab"},
                         measured={"p95_ms": 12.0})
    path = cfg.write(str(tmp_path / "tuned.json"))
    back = PipelineConfig.from_file(path)
    assert back == cfg and back.path == path and json.loads(open(path).read())["batch"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["tuned.json"]  # no temp file left behind
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'bacth'.*known keys: batch"):
        PipelineConfig.from_mapping({"bacth": 4})
    for bad in ({"batch": 0}, {"batch": "4"}, {"max_delay_ms": -1}, {"instances": "gpu,tpu"}):
        with pytest.raises(ConfigError):
            PipelineConfig.from_mapping(bad)
    (tmp_path / "broken.json").write_text("{batch: 4")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PipelineConfig.from_file(tmp_path / "broken.json")


def _batch_sizes(results):
    return {r.batch_size for r in results}


def test_pipeline_config_sets_batching_and_arguments_win(dyn_model, two_videos):
    config = {"batch": 4, "max_delay_ms": 50, "queue_size": 4}
    with Pipeline(str(dyn_model), sources=two_videos, config=config, telemetry=None, load_kwargs={"device": "cpu"}) as p:
        results = list(p)
        stats = p.stats()
    assert len(results) == 80 and max(_batch_sizes(results)) == 4 and stats["batch"]["mean_size"] > 1.5
    assert stats["batch"]["max_batch"] == 4 and stats["batch"]["max_delay_ms"] == 50
    with Pipeline(str(dyn_model), sources=two_videos, config=config, batch=2, telemetry=None,
                  load_kwargs={"device": "cpu"}) as p:  # an explicit argument beats the config
        results = list(p)
    assert max(_batch_sizes(results)) == 2 and p.stats()["batch"]["max_delay_ms"] == 50


def test_pipeline_config_for_another_model_warns(dyn_model, two_videos, caplog, tmp_path):
    path = PipelineConfig(batch=2, model={"id": "other-model@0123456789ab"}).write(str(tmp_path / "other.json"))
    with caplog.at_level(logging.WARNING, logger="edgeinfer.pipeline.config"):
        with Pipeline(str(dyn_model), sources={"a": two_videos["a"]}, config=path, telemetry=None, max_frames=4) as p:
            list(p)
    warned = [r.getMessage() for r in caplog.records if "tuned for model other-model@0123456789ab" in r.getMessage()]
    assert warned and str(path) in warned[0] and p.model_id in warned[0]
    with edgeinfer.load(dyn_model, device="cpu") as model:  # the same model: no warning
        assert PipelineConfig(batch=2, model={"id": model.model_id}).mismatches(model) == []


def test_run_cli_uses_config_and_flags_override(run_cli, dyn_model, two_videos, tmp_path):
    cfg = tmp_path / "tuned.json"
    cfg.write_text(json.dumps({"batch": 4, "max_delay_ms": 40, "queue_size": 4}))
    stats_path = tmp_path / "stats.json"
    args = ["run", dyn_model, "--source", two_videos["a"], "--source", two_videos["b"], "--backend", "onnxruntime",
            "--status-interval", "0", "--stats-json", stats_path, "--config", cfg]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["batch"]["max_batch"] == 4 and stats["batch"]["max_delay_ms"] == 40 and stats["batch"]["mean_size"] > 1.5
    assert f"config {cfg}: batch 4, max_delay_ms 40.0, queue_size 4" in proc.stderr
    proc = run_cli(*args, "--batch", "1")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["batch"]["max_batch"] == 1 and stats["batch"]["mean_size"] == 1 and stats["batch"]["max_delay_ms"] == 40


def test_run_cli_reports_bad_and_mismatched_configs(run_cli, dyn_model, two_videos, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"batch": 2, "delay_ms": 3}))
    proc = run_cli("run", dyn_model, "--source", two_videos["a"], "--config", bad)
    assert proc.returncode == 1 and "unknown key(s) 'delay_ms'" in proc.stderr and "Traceback" not in proc.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"batch": 2, "model": {"id": "yolo11n@ffffffffffff"}}))
    proc = run_cli("run", dyn_model, "--source", two_videos["a"], "--config", other, "--max-frames", "3",
                   "--status-interval", "0")
    assert proc.returncode == 0, proc.stderr
    assert "tuned for model yolo11n@ffffffffffff" in proc.stderr and "re-tune with `edgeinfer bench" in proc.stderr
