"""Event clips: a pre-roll ring of JPEG-encoded frames per source; on an event, the ring plus the
next ``post_s`` seconds are written as one MP4 next to the event's JSON (DeepStream Smart Record's
idea: keep the recent past in memory, encoded, and only write when something happens).

Encoding and writing run in one worker thread fed by a bounded queue, so inference never waits
for JPEG or MP4 work: when the queue is full the frame is skipped for the clips (counted in
``stats()['dropped']``). Frames are downscaled to ``max_width`` first; the ring holds
``pre_s * fps`` of them (~30 KB each at 640 px).

Disk bound, same policy names as the uplink spool: with ``full_policy="drop_oldest"`` the oldest
clips are deleted to make room under ``max_bytes``; with ``"reject_new"`` a new clip is not written
(counted). Clips are written to a temp name and renamed, so a reader never sees half a file.

Example:
    >>> import numpy as np, tempfile
    >>> rec = ClipRecorder(tempfile.mkdtemp(), pre_s=0.2, post_s=0.1, fps=10)
    >>> for i in range(4):
    ...     rec.push("cam", i, np.full((48, 64, 3), 40 * i, np.uint8))
    >>> path = rec.trigger("cam", "ev1", {"rule": "demo"})
    >>> rec.push("cam", 4, np.zeros((48, 64, 3), np.uint8))
    >>> rec.close()
    >>> rec.stats()["written"], path.endswith("cam/ev1.mp4")
    (1, True)
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Tuple

import numpy as np

from .._deps import require
from ..errors import ConfigError

log = logging.getLogger(__name__)
FULL_POLICIES = ("drop_oldest", "reject_new")


@dataclass
class _Recording:
    event_id: str
    path: str
    meta: Dict[str, Any]
    frames: List[Tuple[int, bytes]]
    remaining: int  # post-roll frames still to collect


@dataclass
class _SourceRing:
    ring: Deque[Tuple[int, bytes]]
    active: List[_Recording] = field(default_factory=list)


class ClipRecorder:
    def __init__(self, folder: str, *, pre_s: float = 5.0, post_s: float = 5.0, fps: float = 15.0,
                 max_bytes: int = 512 * 1024 * 1024, full_policy: str = "drop_oldest", max_width: int = 640,
                 jpeg_quality: int = 80, queue_size: int = 64) -> None:
        if pre_s < 0 or post_s < 0 or fps <= 0:
            raise ConfigError(f"clip pre_s={pre_s}, post_s={post_s}, fps={fps}: need pre/post >= 0 and fps > 0",
                              hint="e.g. pre_s=5, post_s=5")
        if full_policy not in FULL_POLICIES:
            raise ConfigError(f"unknown clip full_policy {full_policy!r}", hint=f"use one of {', '.join(FULL_POLICIES)}")
        parent = os.path.dirname(os.path.abspath(folder)) or "."
        if not os.path.isdir(parent):
            raise ConfigError(f"folder {parent!r} for clips does not exist", hint="create it first")
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.pre, self.post = max(1, int(round(pre_s * fps))), int(round(post_s * fps))
        self.fps, self.max_bytes, self.full_policy = float(fps), int(max_bytes), full_policy
        self.max_width, self.quality = int(max_width), int(jpeg_quality)
        self._rings: Dict[str, _SourceRing] = {}
        self._q: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, int(queue_size)))
        self._counts = {"written": 0, "dropped": 0, "rejected_full": 0, "deleted_full": 0, "failed": 0}
        self._thread = threading.Thread(target=self._work, name="clip-recorder", daemon=True)
        self._thread.start()
        self._closed = False

    # -- producer side (pipeline thread) ---------------------------------------------------------
    def push(self, source_id: str, frame_index: int, frame: np.ndarray) -> None:
        """Offer a frame (copied here: the caller's buffer goes back to its pool)."""
        try:
            self._q.put_nowait(("frame", source_id, int(frame_index), np.array(frame, copy=True)))
        except queue.Full:
            self._counts["dropped"] += 1

    def trigger(self, source_id: str, event_id: str, meta: Dict[str, Any]) -> str:
        """Start a clip for an event; returns the path the MP4 will have."""
        path = os.path.join(self.folder, _safe(source_id), f"{_safe(event_id)}.mp4")
        self._q.put(("trigger", source_id, event_id, (path, dict(meta))))  # never dropped: blocks briefly at worst
        return path

    def close(self, timeout: float = 10.0) -> None:
        """Finish every clip with the frames it has, then stop the worker."""
        if self._closed:
            return
        self._closed = True
        self._q.put(("close", "", 0, None))
        self._thread.join(timeout)

    def stats(self) -> Dict[str, int]:
        return dict(self._counts)

    # -- worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            kind, sid, a, b = self._q.get()
            try:
                if kind == "close":
                    for ring in self._rings.values():
                        for rec in ring.active:
                            self._write(rec)
                        ring.active = []
                    return
                ring = self._rings.get(sid)
                if ring is None:
                    ring = self._rings[sid] = _SourceRing(deque(maxlen=self.pre))
                if kind == "trigger":
                    path, meta = b
                    ring.active.append(_Recording(str(a), path, meta, list(ring.ring), self.post))
                    self._finish_done(ring)
                    continue
                jpeg = self._encode(b)
                ring.ring.append((a, jpeg))
                for rec in ring.active:
                    rec.frames.append((a, jpeg))
                    rec.remaining -= 1
                self._finish_done(ring)
            except Exception:  # a clip failure must not stop the recorder (nor the pipeline)
                self._counts["failed"] += 1
                log.exception("clip recorder: %s failed for source %s", kind, sid)

    def _finish_done(self, ring: _SourceRing) -> None:
        done = [r for r in ring.active if r.remaining <= 0]
        ring.active = [r for r in ring.active if r.remaining > 0]
        for rec in done:
            self._write(rec)

    def _encode(self, frame: np.ndarray) -> bytes:
        cv2 = require("cv2", feature="event clips")
        h, w = frame.shape[:2]
        if w > self.max_width:
            frame = cv2.resize(frame, (self.max_width, max(2, int(round(h * self.max_width / w))) // 2 * 2),
                               interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def _write(self, rec: _Recording) -> None:
        cv2 = require("cv2", feature="event clips")
        if not rec.frames:
            return
        os.makedirs(os.path.dirname(rec.path), exist_ok=True)
        estimate = sum(len(j) for _, j in rec.frames)  # mp4v lands near the JPEG total; checked again after writing
        if not self._make_room(estimate):
            self._counts["rejected_full"] += 1
            log.warning("clip %s not written: clip folder is full (%d bytes max)", rec.path, self.max_bytes)
            return
        first = cv2.imdecode(np.frombuffer(rec.frames[0][1], np.uint8), cv2.IMREAD_COLOR)
        h, w = first.shape[:2]
        tmp = rec.path + ".part.mp4"
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        try:
            if not writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write MP4 to {tmp}")
            for _, jpeg in rec.frames:
                img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                if img.shape[:2] != (h, w):
                    img = cv2.resize(img, (w, h))
                writer.write(img)
        except BaseException:
            writer.release()
            _unlink(tmp)
            raise
        writer.release()
        os.replace(tmp, rec.path)
        if not self._make_room(0, keep=rec.path):  # the real size broke the bound: this clip goes
            _unlink(rec.path)
            self._counts["rejected_full"] += 1
            return
        meta = dict(rec.meta, clip=os.path.basename(rec.path), frames=[rec.frames[0][0], rec.frames[-1][0]])
        side = os.path.splitext(rec.path)[0] + ".json"
        with open(side + ".part", "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
        os.replace(side + ".part", side)
        self._counts["written"] += 1

    def _make_room(self, need: int, keep: str = "") -> bool:
        """Delete the oldest clips (drop_oldest) until ``need`` more bytes fit; False when they cannot."""
        files = []
        for root, _, names in os.walk(self.folder):
            for n in names:
                if n.endswith(".mp4") and not n.endswith(".part.mp4"):
                    p = os.path.join(root, n)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    files.append((st.st_mtime, st.st_size, p))
        used = sum(s for _, s, _ in files)
        if used + need <= self.max_bytes:
            return True
        if self.full_policy == "reject_new":
            return False
        for _, size, p in sorted(files):
            if p == keep:
                continue
            _unlink(p)
            _unlink(os.path.splitext(p)[0] + ".json")
            self._counts["deleted_full"] += 1
            used -= size
            if used + need <= self.max_bytes:
                return True
        return used + need <= self.max_bytes


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "source"
