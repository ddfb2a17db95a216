"""`Analytics`: the one stage between post-processing and sinks/uplink: tracking, zones and lines,
rules -> events, event clips. The pipeline calls :meth:`Analytics.process` once per result, in
capture order per source (so per-source state needs no lock).

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> a = Analytics(tracker="bytetrack", config={"sources": {"*": {
    ...     "lines": [{"name": "door", "points": [[50, 0], [50, 100]]}],
    ...     "rules": [{"name": "entered", "type": "line_cross", "line": "door"}]}}})
    >>> events = []
    >>> for i, x in enumerate((30, 40, 60, 70)):
    ...     dets, ev = a.process("cam0", i, float(i), Detections([[x - 20, 40, x + 20, 60]], [0.9], [0], {0: "person"}))
    ...     events += ev
    >>> [(e.rule, e.track_id, e.details["direction"]) for e in events], a.summary("cam0")["lines"]["door"]
    ([('entered', 1, 'in')], {'in': {'person': 1}, 'out': {}})
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .bytetrack import ByteTracker, make_tracker
from .config import AnalyticsConfig, SourceConfig, load_config
from .rules import Event, Rule, class_ok, resolve_class_ids
from .zones import CountLine, Zone

log = logging.getLogger(__name__)


class _SourceState:
    def __init__(self, source_id: str, cfg: SourceConfig, names: Dict[int, str], *, tracker: Optional[ByteTracker],
                 frame_rate: float) -> None:
        self.source_id = source_id
        self.names = names
        self.rate = frame_rate
        self.tracker = tracker
        self.zones = {z["name"]: Zone(z["name"], z["points"], resolve_class_ids(z.get("classes"), names),
                                      z.get("anchor", "bottom_center")) for z in cfg.zones}
        self.lines = {ln["name"]: CountLine(ln["name"], ln["points"], resolve_class_ids(ln.get("classes"), names),
                                            ln.get("anchor", "bottom_center")) for ln in cfg.lines}
        self.rules: List[Rule] = list(cfg.rules)
        self.fired: Dict[Tuple[str, int], int] = {}  # (dwell rule, track) -> entry frame already reported
        self.count_armed: Dict[str, bool] = {}
        self.count_episode: Dict[str, int] = {}
        self.entry_frame: Dict[Tuple[str, int], int] = {}

    def step(self, frame_index: int, ts: float, dets: Any) -> List[Event]:
        t = frame_index / self.rate  # video time: dwell is measured in the source's seconds, not wall clock
        crossings = {name: line.update(dets) for name, line in self.lines.items()}
        for name, zone in self.zones.items():
            entered, left = zone.update(dets, t)
            for tid in entered:
                self.entry_frame[(name, tid)] = frame_index
            for tid in left:
                self.entry_frame.pop((name, tid), None)
        events: List[Event] = []
        for rule in self.rules:
            events.extend(self._evaluate(rule, frame_index, ts, t, crossings))
        return events

    def _event(self, rule: Rule, frame_index: int, ts: float, subject: str, **kw: Any) -> Event:
        return Event(rule=rule.name, kind=rule.type, source_id=self.source_id, frame_index=frame_index, ts=ts,
                     subject=subject, **kw)

    def _evaluate(self, rule: Rule, frame_index: int, ts: float, t: float, crossings) -> List[Event]:
        out: List[Event] = []
        if rule.type == "line_cross":
            for tid, cls, direction in crossings.get(rule.line, []):
                if (rule.direction in (None, direction)) and class_ok(rule.classes, cls, self.names):
                    out.append(self._event(rule, frame_index, ts, f"track-{tid}", track_id=tid, line=rule.line,
                                           class_name=self.names.get(cls, str(cls)),
                                           details={"direction": direction, "episode": frame_index}))
        elif rule.type == "dwell":
            zone = self.zones[rule.zone]
            for tid, secs in zone.dwell(t).items():
                cls = zone.occupant_class.get(tid, -1)
                entry = self.entry_frame.get((rule.zone, tid), frame_index)
                if secs > rule.seconds and class_ok(rule.classes, cls, self.names) \
                        and self.fired.get((rule.name, tid)) != entry:
                    self.fired[(rule.name, tid)] = entry
                    out.append(self._event(rule, frame_index, ts, f"track-{tid}", track_id=tid, zone=rule.zone,
                                           class_name=self.names.get(cls, str(cls)),
                                           details={"seconds": round(secs, 2), "episode": entry}))
            if len(self.fired) > 10000:
                self.fired.clear()
        elif rule.type == "count":
            zone = self.zones[rule.zone]
            n = sum(1 for c in zone.occupant_class.values() if class_ok(rule.classes, c, self.names))
            armed = self.count_armed.get(rule.name, True)
            if n > rule.above and armed:
                self.count_armed[rule.name] = False
                self.count_episode[rule.name] = frame_index
                out.append(self._event(rule, frame_index, ts, f"count-{frame_index}", zone=rule.zone,
                                       details={"count": n, "above": rule.above, "episode": frame_index}))
            elif n <= rule.above:
                self.count_armed[rule.name] = True
        return out

    def summary(self, t: float) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.zones:
            out["zones"] = {name: {"count": z.count(self.names), "entered": dict(z.entered),
                                   "max_dwell_s": round(max(z.dwell(t).values(), default=0.0), 2)}
                            for name, z in self.zones.items()}
        if self.lines:
            out["lines"] = {name: ln.counts() for name, ln in self.lines.items()}
        return out


class Analytics:
    """Tracking + zones/lines + rules + clips for every source of a pipeline.

    Args:
        tracker: ``"bytetrack"`` (or None: no track ids; zones and lines then see nothing, as they count tracks).
        tracker_options: :class:`~edgeinfer.analytics.bytetrack.ByteTrackConfig` fields.
        config: zones/lines/rules (YAML path or dict, see :mod:`edgeinfer.analytics.config`).
        record_events: folder for event clips (None: no clips). clip_options: ClipRecorder keywords.
        frame_rate: default source rate (a source's own ``frame_rate`` in the config, then ``fps_of(source)``
            -- the file's rate -- come first). ``stride``: only every Nth frame reaches us, so the tracker
            sees ``frame_rate / stride``.
        on_event: called with each Event (besides the uplink).
    """

    def __init__(self, *, tracker: Optional[str] = None, tracker_options: Optional[Dict[str, Any]] = None,
                 config: Any = None, record_events: Optional[str] = None, clip_options: Optional[Dict[str, Any]] = None,
                 frame_rate: float = 30.0, stride: int = 1, fps_of: Optional[Callable[[str], float]] = None,
                 on_event: Optional[Callable[[Event], Any]] = None, source_ids: Optional[List[str]] = None) -> None:
        self.config: AnalyticsConfig = config if isinstance(config, AnalyticsConfig) else load_config(config)
        if source_ids is not None:
            self.config.check_sources(source_ids)
        self.tracker_name = tracker
        self.tracker_options = dict(tracker_options or {})
        if tracker:
            make_tracker(tracker, **self.tracker_options)  # validate now, not at the first frame
        if not tracker and any(c.zones or c.lines for c in self.config.sources.values()):
            log.warning("zones and lines count tracks: without a tracker they stay empty (use tracker='bytetrack')")
        self.default_rate = float(frame_rate)
        self.stride = max(1, int(stride))
        self._fps_of = fps_of
        self._on_event = on_event
        self._states: Dict[str, _SourceState] = {}
        self.events = 0
        self.recorder = None
        if record_events:
            from .clips import ClipRecorder

            self.recorder = ClipRecorder(record_events, **dict(clip_options or {}))

    def _rate(self, source_id: str, cfg: SourceConfig) -> float:
        rate = cfg.frame_rate
        if not rate and self._fps_of is not None:
            try:
                rate = float(self._fps_of(source_id) or 0.0)
            except Exception:  # a source that cannot say its rate gets the default
                rate = 0.0
        return (rate if rate and 0 < rate < 1000 else self.default_rate) / self.stride

    def _state(self, source_id: str, names: Dict[int, str]) -> _SourceState:
        st = self._states.get(source_id)
        if st is None:
            cfg = self.config.for_source(source_id)
            rate = self._rate(source_id, cfg)
            tracker = make_tracker(self.tracker_name, frame_rate=rate, **self.tracker_options) if self.tracker_name else None
            st = self._states[source_id] = _SourceState(source_id, cfg, names, tracker=tracker, frame_rate=rate)
        return st

    def process(self, source_id: str, frame_index: int, ts: float, detections: Any,
                frame: Optional[np.ndarray] = None) -> Tuple[Any, List[Event]]:
        """(detections with track ids, events) for one frame of ``source_id``."""
        names = getattr(detections, "names", {}) or {}
        st = self._state(source_id, names)
        if st.tracker is not None and hasattr(detections, "xyxy"):
            detections = st.tracker.update(detections)
        events = st.step(frame_index // self.stride if self.stride > 1 else frame_index, ts, detections) \
            if hasattr(detections, "xyxy") else []
        if self.recorder is not None and frame is not None:
            self.recorder.push(source_id, frame_index, frame)
        for ev in events:
            ev.frame_index = frame_index
            if self.recorder is not None:
                ev.clip = self.recorder.trigger(source_id, ev.event_id, ev.to_record())
            self.events += 1
            if self._on_event is not None:
                try:
                    self._on_event(ev)
                except Exception:  # a faulty hook must not stop the analytics
                    log.exception("on_event callback failed for %s", ev.rule)
        return detections, events

    def apply(self, result: Any, frame: Optional[np.ndarray] = None) -> List[Event]:
        """Pipeline hook: track and evaluate one FrameResult in place (detections get track ids,
        ``analytics`` the counts, ``overlay`` the zone drawing); returns its events."""
        result.detections, events = self.process(result.source_id, result.frame_index, result.capture_ts,
                                                 result.detections, frame)
        result.analytics = self.summary(result.source_id) or None
        result.overlay = self.overlay(result.source_id)
        return events

    def summary(self, source_id: str) -> Dict[str, Any]:
        """Counts per zone/line and dwell for one source (goes into each uplink record)."""
        st = self._states.get(source_id)
        if st is None:
            return {}
        t = (st.tracker.frame_id if st.tracker is not None else 0) / st.rate
        return st.summary(t)

    def overlay(self, source_id: str) -> Callable[[np.ndarray], None]:
        """A drawing function for sinks: zones, lines and their counts *as of now* (a snapshot: the
        sink thread draws it later while this thread goes on updating the counts)."""
        from .draw import draw_overlay, overlay_snapshot

        st = self._states.get(source_id)
        snap = overlay_snapshot(st) if st is not None else ([], [])
        return lambda img: draw_overlay(img, snap)

    def stats(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"events": self.events, "tracker": self.tracker_name,
                               "sources": {sid: self.summary(sid) for sid in self._states}}
        if self.recorder is not None:
            out["clips"] = self.recorder.stats()
        return out

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
