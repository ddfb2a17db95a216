"""`edgeinfer demo`: the whole product on the bundled demo model, end to end, on any machine.

Steps: resolve the device profiles -> generate the synthetic data and video (deterministic)
-> sanity-run the demo ONNX on ONNX Runtime against ground truth -> package it for the devices
with host-made INT8 and an accuracy report -> inspect the bundle -> run the bundle over the
video into an annotated MP4 and print the pipeline's stats.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict

import click

DEFAULT_DEVICES = "orin-nx-16gb,orin-nano-8gb"


def _step(title: str) -> Callable[[str], None]:
    click.secho(f"\n== {title}", bold=True)
    return lambda line: click.echo(f"   {line}")


def _profiles(devices: str) -> None:
    from ..profiles import resolve_devices

    say = _step(f"1/6 device profiles: {devices}")
    for p in resolve_devices(devices):
        jp = p.latest_jetpack
        say(f"{p.name:<14} SM {p.compute_capability}  DLA cores {p.dla_cores}  "
            f"JetPack {jp.jetpack} (TensorRT {jp.tensorrt})")


def _data(work: Path, frames: int) -> Dict[str, Path]:
    from ..demo import make_dataset, make_video

    say = _step("2/6 synthetic data (deterministic, seed 0)")
    # Scenes are keyed by (seed, split, index): seed 0's test split is the one held out when the demo
    # model was trained, so scoring on it measures unseen data.
    data = make_dataset(work / "shapes", n_train=128, n_val=8, n_test=100, seed=0)
    video = make_video(work / "shapes.mp4", frames=frames, seed=0)
    say(f"dataset {data}  (train images calibrate INT8, the held-out test split scores accuracy)")
    say(f"video   {video} ({frames} frames, 640x480)")
    return {"data": data, "video": video}


def _sanity(test_images: Path) -> None:
    import cv2

    from .. import load
    from ..demo import demo_model_path, read_yolo_labels

    say = _step("3/6 demo ONNX sanity run on ONNX Runtime")
    image = sorted(test_images.glob("*.jpg"))[0]
    frame = cv2.imread(str(image))
    label = test_images.parent.parent / "labels" / "test" / (image.stem + ".txt")
    truth = read_yolo_labels(label, width=frame.shape[1], height=frame.shape[0])
    with load(demo_model_path("onnx"), backend="onnxruntime") as model:
        dets = model(frame)
        say(f"{image.name}: {len(dets)} detections, {len(truth)} labelled objects ({model.backend_name})")
    for name, conf, box in zip(dets.class_names, dets.confidence, dets.xyxy):
        say(f"  {name:<9} {conf:.2f}  [{', '.join(f'{v:.0f}' for v in box)}]")


def _package(work: Path, data: Path, devices: str) -> Path:
    from ..demo import demo_model_path
    from ..packager import package_model
    from .package_cmd import _ProgressLine

    say = _step(f"4/6 package the demo model for {devices} (INT8 made on this host)")
    return package_model(demo_model_path("onnx"), devices=devices, precision="int8",
                         calib=data / "images" / "train", val=data / "images" / "test",
                         out=work / "shapes.bundle", force=True, progress=_ProgressLine(), report=say)


def _inspect(bundle: Path) -> None:
    from ..bundle import open_bundle, summarize
    from .inspect_cmd import render_text

    _step(f"5/6 inspect {bundle.name}")
    click.echo(render_text(summarize(open_bundle(bundle))))


def _run(bundle: Path, video: Path, work: Path) -> None:
    from ..pipeline.pipeline import Pipeline
    from .run_cmd import summary_lines, write_json_atomic

    say = _step("6/6 run the bundle over the video (capture -> infer -> annotated MP4)")
    out = work / "shapes-annotated.mp4"
    # sink_lossless: the annotated file keeps every frame (a file source can wait for the writer).
    p = Pipeline(str(bundle), sources=[str(video)], sink=f"file://{out}", collect_results=False,
                 telemetry="auto", sink_lossless=True)
    stats = p.run()
    for line in summary_lines(stats):
        say(line)
    write_json_atomic(str(work / "stats.json"), stats)
    say(f"annotated video: {out}")
    say(f"stats JSON:      {work / 'stats.json'}")


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False), default="edgeinfer-demo", show_default=True,
              help="Where the generated data, bundle, video and stats go.")
@click.option("--devices", default=DEFAULT_DEVICES, show_default=True, help="Device profiles to package for.")
@click.option("--frames", type=click.IntRange(min=10), default=150, show_default=True, help="Frames in the demo video.")
def demo(workdir: str, devices: str, frames: int) -> None:
    """Run the bundled demo end to end: data, sanity run, INT8 package, inspect, run over a video."""
    start = time.perf_counter()
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    _profiles(devices)
    made = _data(work, frames)
    _sanity(made["data"] / "images" / "test")
    bundle = _package(work, made["data"], devices)
    _inspect(bundle)
    _run(bundle, made["video"], work)
    click.secho(f"\ndemo finished in {time.perf_counter() - start:.0f} s; everything is in {work}", bold=True)
