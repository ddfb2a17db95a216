"""ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box",
ECCV 2022, arXiv:2110.06864): Kalman prediction + two-stage IoU association, high-score boxes first,
then the low-score boxes (occluded objects) against the tracks still unmatched.

Why our own implementation: ``supervision`` (whose ``sv.ByteTrack`` is this algorithm) needs Python
>= 3.10 plus scipy, matplotlib and av, and Ultralytics' trackers need the ultralytics/torch stack;
neither runs on JetPack 5's Python 3.8 device image. This module is numpy only (plus the optional
``lap`` Jonker-Volgenant solver) and its state is batched arrays, so 50 objects cost well under a
millisecond. It follows the reference design (states new/tracked/lost/removed, ``track_buffer``
scaled by frame rate, unconfirmed tracks confirmed by a second hit) and is scored against
Ultralytics' ByteTrack on the same detections in ``scripts/bench_tracking.py``.

Matching ignores classes by default, as the reference ByteTrack and Ultralytics do: a detector that
calls an object "rect" in one frame and "triangle" in the next must not split its track (the
track takes the class of its latest box); ``per_class=True`` forbids cross-class matches instead.
Class-aware NMS keeps two boxes on one object when the detector is unsure of its class ("rect"
0.8 and "circle" 0.4 on the same shape); both would then fight over one track, so before
association boxes overlapping a better box by more than ``dedupe_iou`` are dropped, whatever
their class (class-agnostic NMS at a high threshold; set it to 1 to keep everything).
Output rows are the *detections* that belong to a confirmed track, with the track's id, so masks,
keypoints and rotated boxes stay attached to their rows.

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> t = ByteTracker(frame_rate=30)
    >>> ids = []
    >>> for x in (10, 14, 18):
    ...     out = t.update(Detections([[x, 10, x + 20, 50]], [0.9], [0]))
    ...     ids.append(out.track_id.tolist())
    >>> ids
    [[1], [1], [1]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from ..errors import ConfigError
from ..runtime.postprocess import nms
from .kalman import BatchKalman, xyah_to_xyxy, xyxy_to_xyah
from .matching import iou_matrix, linear_assignment

TRACKED, LOST = 1, 2


@dataclass(frozen=True)
class ByteTrackConfig:
    """ByteTrack's thresholds (Ultralytics' ``bytetrack.yaml`` defaults).

    ``track_buffer`` is in frames at 30 FPS: a lost track survives ``track_buffer * frame_rate / 30``
    frames, i.e. about one second whatever the source's frame rate (and the ``stride``).
    """

    track_high_thresh: float = 0.25  # first association with boxes at or above this score
    track_low_thresh: float = 0.1  # second association with boxes between low and high
    new_track_thresh: float = 0.25  # a box unmatched after both rounds starts a track at or above this
    track_buffer: int = 30
    match_thresh: float = 0.8  # max cost (1 - IoU x score) of a first-round match
    fuse_score: bool = True
    per_class: bool = False  # True: a track only ever matches boxes of its own class
    dedupe_iou: float = 0.7  # boxes of *other* classes overlapping a better box this much are one object, dropped

    def __post_init__(self) -> None:
        for name in ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh", "dedupe_iou"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ConfigError(f"tracker {name}={v} is outside 0..1", hint="use thresholds between 0 and 1")
        if int(self.track_buffer) < 1:
            raise ConfigError(f"tracker track_buffer={self.track_buffer} must be >= 1", hint="use e.g. 30 (frames at 30 FPS)")


class ByteTracker:
    """One tracker per source. ``update(detections) -> detections of confirmed tracks, with track_id``."""

    def __init__(self, *, frame_rate: float = 30.0, config: Optional[ByteTrackConfig] = None) -> None:
        if not frame_rate or frame_rate <= 0:
            raise ConfigError(f"frame_rate={frame_rate} must be > 0", hint="pass the source's frames per second")
        self.cfg = config or ByteTrackConfig()
        self.frame_rate = float(frame_rate)
        self.max_time_lost = max(1, int(round(self.frame_rate / 30.0 * self.cfg.track_buffer)))
        self.kf = BatchKalman()
        self.frame_id = 0
        self._next_id = 1
        # track table: parallel arrays, one row per live track
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)
        self.cls = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int8)
        self.confirmed = np.zeros(0, bool)
        self.last_seen = np.zeros(0, np.int64)
        self.score = np.zeros(0)

    def reset(self) -> None:
        self.__init__(frame_rate=self.frame_rate, config=self.cfg)  # type: ignore[misc]

    def __len__(self) -> int:
        return int((self.state == TRACKED).sum())

    def _cost(self, t_idx: np.ndarray, boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray, fuse: bool) -> np.ndarray:
        if len(t_idx) == 0 or len(boxes) == 0:
            return np.zeros((len(t_idx), len(boxes)))
        iou = iou_matrix(self._pred_boxes[t_idx], boxes)
        if fuse:
            iou = iou * scores[None, :]
        cost = 1.0 - iou
        if self.cfg.per_class:
            cost[self.cls[t_idx][:, None] != cls[None, :]] = 1e6  # never match across classes
        return cost

    def update(self, dets: Any) -> Any:
        """Advance one frame; returns ``dets`` rows of confirmed, matched tracks with ``track_id`` set."""
        self.frame_id += 1
        if self.cfg.dedupe_iou < 1.0 and not self.cfg.per_class and len(dets) > 1:
            # cheap test first: NMS only runs on frames that really have two boxes on one object
            if (np.triu(iou_matrix(dets.xyxy, dets.xyxy), 1) > self.cfg.dedupe_iou).any():
                keep = np.sort(nms(np.asarray(dets.xyxy, np.float32), dets.confidence, self.cfg.dedupe_iou))
                dets = dets[keep]
        n = len(dets)
        boxes = np.asarray(dets.xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(dets.confidence, np.float64).reshape(-1)
        cls = np.asarray(dets.class_id, np.int64).reshape(-1)
        cfg = self.cfg
        det_track = np.full(n, -1, np.int64)  # row in the track table per detection

        self.mean[self.state != TRACKED, 7] = 0.0  # a lost track keeps its size (reference ByteTrack's multi_predict)
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        self._pred_boxes = xyah_to_xyxy(self.mean[:, :4])  # once per frame, shared by the three rounds
        high = np.flatnonzero(scores >= cfg.track_high_thresh)
        low = np.flatnonzero((scores >= cfg.track_low_thresh) & (scores < cfg.track_high_thresh))

        # round 1: confirmed tracks (tracked or lost) with high boxes
        pool = np.flatnonzero(self.confirmed)
        m1, um_t, um_d = linear_assignment(self._cost(pool, boxes[high], scores[high], cls[high], cfg.fuse_score),
                                           cfg.match_thresh)
        det_track[high[m1[:, 1]]] = pool[m1[:, 0]]
        # round 2: still-unmatched *tracked* tracks with the low boxes (occlusion: low scores)
        rest = pool[um_t]
        rest = rest[self.state[rest] == TRACKED]
        m2, _, _ = linear_assignment(self._cost(rest, boxes[low], scores[low], cls[low], False), 0.5)
        det_track[low[m2[:, 1]]] = rest[m2[:, 0]]
        # round 3: unconfirmed tracks (seen once) with the high boxes left
        left = high[um_d]
        unconf = np.flatnonzero(~self.confirmed)
        m3, um_u, um_d3 = linear_assignment(self._cost(unconf, boxes[left], scores[left], cls[left], cfg.fuse_score), 0.7)
        det_track[left[m3[:, 1]]] = unconf[m3[:, 0]]

        matched_t = det_track[det_track >= 0]
        matched_d = np.flatnonzero(det_track >= 0)
        if len(matched_t):
            mean, cov = self.kf.update(self.mean[matched_t], self.cov[matched_t], xyxy_to_xyah(boxes[matched_d]))
            self.mean[matched_t], self.cov[matched_t] = mean, cov
            self.state[matched_t] = TRACKED
            self.confirmed[matched_t] = True
            self.last_seen[matched_t] = self.frame_id
            self.score[matched_t] = scores[matched_d]
            self.cls[matched_t] = cls[matched_d]

        seen = np.zeros(len(self.ids), bool)
        seen[matched_t] = True
        self.state[~seen & (self.state == TRACKED)] = LOST
        keep = seen | (self.confirmed & (self.frame_id - self.last_seen <= self.max_time_lost))
        self._compact(keep, det_track)

        new = left[um_d3]
        new = new[scores[new] >= cfg.new_track_thresh]
        if len(new):
            det_track[new] = self._start(boxes[new], scores[new], cls[new])

        out_rows = np.flatnonzero(det_track >= 0)
        out_rows = out_rows[self.confirmed[det_track[out_rows]]]
        return dets[out_rows].with_tracks(self.ids[det_track[out_rows]])

    def _compact(self, keep: np.ndarray, det_track: np.ndarray) -> None:
        if keep.all():
            return
        remap = np.full(len(keep), -1, np.int64)
        remap[keep] = np.arange(int(keep.sum()))
        ok = det_track >= 0
        det_track[ok] = remap[det_track[ok]]
        for name in ("mean", "cov", "ids", "cls", "state", "confirmed", "last_seen", "score"):
            setattr(self, name, getattr(self, name)[keep])

    def _start(self, boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray) -> np.ndarray:
        k = len(boxes)
        mean, cov = self.kf.initiate(xyxy_to_xyah(boxes))
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        first = self.frame_id == 1  # ByteTrack confirms tracks of the very first frame at once
        rows = np.arange(len(self.ids), len(self.ids) + k)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, ids])
        self.cls = np.concatenate([self.cls, cls])
        self.state = np.concatenate([self.state, np.full(k, TRACKED, np.int8)])
        self.confirmed = np.concatenate([self.confirmed, np.full(k, first)])
        self.last_seen = np.concatenate([self.last_seen, np.full(k, self.frame_id, np.int64)])
        self.score = np.concatenate([self.score, scores])
        return rows


def make_tracker(name: str, *, frame_rate: float = 30.0, **overrides: Any) -> ByteTracker:
    """Tracker by name (``bytetrack``); ``overrides`` are :class:`ByteTrackConfig` fields."""
    if str(name).lower() not in ("bytetrack", "byte", "true", "1"):
        raise ConfigError(f"unknown tracker {name!r}", hint="use tracker='bytetrack'")
    try:
        cfg = ByteTrackConfig(**overrides)
    except TypeError as exc:
        raise ConfigError(f"bad tracker option: {exc}", hint=f"options: {', '.join(ByteTrackConfig.__dataclass_fields__)}") from exc
    return ByteTracker(frame_rate=frame_rate, config=cfg)


def live_ids(tracker: ByteTracker) -> List[int]:
    return tracker.ids[tracker.state == TRACKED].tolist()
