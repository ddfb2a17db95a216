"""End to end: the committed demo detector on a generated video with known tracks, through
``edgeinfer run --track --zones --record-events`` with a real file uplink; plus the run options."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeinfer.demo import load_video_truth, make_video

MODEL = Path(__file__).resolve().parents[2] / "edgeinfer" / "_data" / "demo" / "shapes-yolo11n-320.onnx"
ZONES = """
sources:
  "*":
    zones:
      - name: left
        points: [[0, 0], [160, 0], [160, 240], [0, 240]]
    lines:
      - name: middle
        points: [[160, 0], [160, 240]]
    rules:
      - {name: crossed, type: line_cross, line: middle}
      - {name: stays-left, type: dwell, zone: left, seconds: 1.0}
      - {name: busy-left, type: count, zone: left, above: 1}
"""


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video") / "v.mp4", frames=90, size=(320, 240), seed=3)


def _records(path):
    return [json.loads(line)["record"] for line in Path(path).read_text().splitlines() if line.strip()]


def _gt_crossings(video, x_line=160.0):
    side, n = {}, 0
    for frame in load_video_truth(video)["boxes"]:
        for b in frame:
            s = (b["xyxy"][0] + b["xyxy"][2]) / 2 > x_line
            n += b["track_id"] in side and side[b["track_id"]] != s
            side[b["track_id"]] = s
    return n


def _ids_per_truth(video, frames):
    """True track id -> our track id on its best-IoU box, per frame where it was detected."""
    from edgeinfer.analytics.matching import iou_matrix

    out = {}
    for rec, truth in zip(frames, load_video_truth(video)["boxes"]):
        if not rec["detections"] or not truth:
            continue
        iou = iou_matrix(np.array([b["xyxy"] for b in truth]), np.array([d["xyxy"] for d in rec["detections"]]))
        for g, row in zip(truth, iou):
            if row.max() > 0.5:
                out.setdefault(g["track_id"], []).append(rec["detections"][int(row.argmax())]["track_id"])
    assert len(out) >= 3
    return out


@pytest.fixture(scope="module")
def analytics_run(video, tmp_path_factory):
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("run")
    (out / "zones.yaml").write_text(ZONES)

    def run():
        for p in ("results.jsonl",):
            if (out / p).exists():
                (out / p).unlink()
        proc = subprocess.run([sys.executable, "-m", "edgeinfer", "run", str(MODEL), "--source", str(video),
                               "--track", "--zones", "zones.yaml", "--record-events", "clips",
                               "--uplink", "file://results.jsonl", "--sink", "file://annotated.mp4",
                               "--sink-lossless", "--status-interval", "0"],
                              cwd=out, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc, _records(out / "results.jsonl")

    first = run()
    return out, first, run


@pytest.mark.slow
def test_run_tracks_counts_and_emits_events_with_clips(analytics_run, video):
    out, (proc, records), _ = analytics_run
    frames = [r for r in records if r.get("type") != "event"]
    events = [r for r in records if r.get("type") == "event"]
    assert len(frames) == 90
    dets = [d for r in frames for d in r["detections"]]
    assert dets and all("track_id" in d for d in dets)
    # ids stay stable: per true object, its best-matching box carries one id in >= 70% of its frames (this video
    # hides one object completely for 10 frames behind another: ByteTrack, IoU-only, may give it a new id then)
    for gt_id, ids in _ids_per_truth(video, frames).items():
        assert max(ids.count(i) for i in set(ids)) >= 0.7 * len(ids), (gt_id, ids)
    # counts: the line's in + out equal the truth's crossings of x = 160 (one jitter at the line allowed)
    lines = frames[-1]["analytics"]["lines"]["middle"]
    counted = sum(lines["in"].values()) + sum(lines["out"].values())
    gt = _gt_crossings(video)
    assert gt > 0 and abs(counted - gt) <= 1, (counted, gt)
    assert sum(1 for e in events if e["rule"] == "crossed") == counted
    # events: their own records, unique idempotency keys, each with a clip that is a playable MP4
    assert {e["kind"] for e in events} >= {"line_cross", "count"}
    assert len({e["event_id"] for e in events}) == len(events)
    import cv2

    for e in events:
        clip = out / e["clip"]
        assert clip.is_file(), e
        cap = cv2.VideoCapture(str(clip))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        assert n >= 2
        assert json.loads(clip.with_suffix(".json").read_text())["event_id"] == e["event_id"]
    assert not list(out.rglob("*.part*"))
    assert (out / "annotated.mp4").stat().st_size > 10000
    assert "analytics:" in proc.stdout and "events" in proc.stdout


@pytest.mark.slow
def test_event_ids_are_idempotent_across_runs(analytics_run):
    _, (_, first), run = analytics_run
    _, second = run()
    ids = lambda recs: sorted(r["event_id"] for r in recs if r.get("type") == "event")  # noqa: E731
    assert ids(first) and ids(first) == ids(second)


def test_pipeline_api_stride_classes_and_events(video, tmp_path):
    import edgeinfer

    events = []
    results = []
    zones = {"sources": {"*": {"lines": [{"name": "middle", "points": [[160, 0], [160, 240]]}],
                               "rules": [{"name": "crossed", "type": "line_cross", "line": "middle"}]}}}
    with edgeinfer.Pipeline(str(MODEL), sources=[str(video)], tracker="bytetrack", zones=zones, stride=2,
                            classes=["rect", "triangle"], conf=0.3, on_analytics_event=events.append,
                            max_frames=60) as p:
        for r in p:
            results.append(r)
    assert [r.frame_index for r in results] == list(range(0, 60, 2))
    names = {n for r in results for n in r.detections.class_names}
    assert names and names <= {"rect", "triangle"}
    assert all(r.detections.track_id is not None for r in results)
    assert all(r.analytics and "lines" in r.analytics for r in results)
    assert all(e.rule == "crossed" for e in events)


def test_per_class_conf_on_the_cli(video, tmp_path, run_cli):
    res = run_cli("run", MODEL, "--source", video, "--max-frames", "10", "--conf", "0.25", "--conf", "rect=0.999",
                  "--uplink", "file://r.jsonl", "--status-interval", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    recs = _records(tmp_path / "r.jsonl")
    names = {d["class_name"] for r in recs for d in r["detections"]}
    assert names and "rect" not in names


@pytest.mark.parametrize("args,needle", [
    (["--conf", "person=abc"], "--conf"),
    (["--conf", "nosuchclass=0.5"], "nosuchclass"),
    (["--stride", "0"], "--stride"),
    (["--zones", "bad.yaml"], "bad.yaml"),
])
def test_bad_options_are_one_clean_line(video, tmp_path, run_cli, args, needle):
    (tmp_path / "bad.yaml").write_text("sources:\n  cam: {zones: [{name: z, points: [[0, 0], [1, 1]]}]}\n")
    res = run_cli("run", MODEL, "--source", video, "--max-frames", "3", "--status-interval", "0", *args, cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and needle in res.stderr, res.stderr
    assert not [p for p in os.listdir(tmp_path) if p not in ("bad.yaml",)]


def test_clip_folder_stays_under_its_bound(tmp_path):
    from edgeinfer.analytics.clips import ClipRecorder

    bound = 150_000
    rec = ClipRecorder(str(tmp_path / "clips"), pre_s=1.0, post_s=0.5, fps=10, max_bytes=bound, queue_size=256)
    rng = np.random.default_rng(0)
    for i in range(120):
        rec.push("cam", i, rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))  # noise: JPEGs that do not shrink
        if i % 20 == 19:
            rec.trigger("cam", f"ev{i}", {"event_id": f"ev{i}"})
    rec.close()
    st = rec.stats()
    sizes = [p.stat().st_size for p in (tmp_path / "clips").rglob("*.mp4")]
    assert st["written"] >= 2 and st["deleted_full"] >= 1, st
    assert sum(sizes) <= bound and not list((tmp_path / "clips").rglob("*.part*"))


def test_http_uplink_receives_frames_and_event_records(video, tmp_path):
    """A real HTTP ingest server on loopback gets the tracked frame records and every event record."""
    import sys

    import edgeinfer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
    from uplink_receivers import Receiver, wait_until

    receiver = Receiver().start()
    try:
        zones = {"sources": {"*": {"lines": [{"name": "middle", "points": [[160, 0], [160, 240]]}],
                                   "rules": [{"name": "crossed", "type": "line_cross", "line": "middle"}]}}}
        p = edgeinfer.Pipeline(str(MODEL), sources={"cam": str(video)}, tracker="bytetrack", zones=zones,
                               uplink=receiver.url, uplink_spool=str(tmp_path / "spool"), collect_results=False)
        stats = p.run(timeout=300)
        events = stats["analytics"]["events"]
        assert events > 0
        ok = wait_until(lambda: len(receiver.by_key) >= 90 + events, timeout=30)
        records = [env["record"] for env in receiver.by_key.values()]
        assert ok, len(records)
        got = [r for r in records if r.get("type") == "event"]
        assert len(got) == events and all(r["source_id"] == "cam" and r["event_id"] for r in got)
        frames = [r for r in records if r.get("type") != "event"]
        assert all("track_id" in d for r in frames for d in r["detections"])
    finally:
        receiver.stop()
