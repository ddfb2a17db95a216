"""Event rules over zones and lines, and the event records they emit.

Three rule types (each with an optional class filter):

* ``dwell``      -- a track stays in ``zone`` for more than ``seconds`` (one event per visit);
* ``line_cross`` -- a track crosses ``line`` (optionally only ``direction: in`` or ``out``);
* ``count``      -- more than ``above`` objects in ``zone`` (edge-triggered: fires when the count
  rises above the limit, re-arms when it falls back to it or below).

Every event carries an ``event_id`` idempotency key derived from what it is about (source, rule,
track or count episode, first frame), not from when it was sent: a record re-sent after an outage or
re-emitted by re-processing the same video keeps its key, so the receiver can de-duplicate.

Example:
    >>> r = Rule.from_dict({"name": "loiter", "type": "dwell", "zone": "door", "seconds": 5})
    >>> ev = Event(rule="loiter", kind="dwell", source_id="cam0", frame_index=150, ts=1.0, subject="track-3")
    >>> ev.event_id == Event(rule="loiter", kind="dwell", source_id="cam0", frame_index=150, ts=9.0,
    ...                      subject="track-3").event_id
    True
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ..errors import ConfigError

RULE_TYPES = ("dwell", "line_cross", "count")


@dataclass(frozen=True)
class Rule:
    name: str
    type: str
    zone: Optional[str] = None
    line: Optional[str] = None
    seconds: float = 0.0
    above: int = 0
    direction: Optional[str] = None  # line_cross: in | out | None (both)
    classes: Optional[Sequence[Any]] = None  # class names or ids

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Rule":
        if not isinstance(data, dict):
            raise ConfigError(f"rule {data!r} is not a mapping", hint="write each rule as name:, type:, zone:/line: ...")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"rule {data.get('name', '?')!r}: unknown key(s) {unknown}", hint=f"keys: {', '.join(sorted(known))}")
        if "name" not in data or "type" not in data:
            raise ConfigError(f"rule {data!r} needs a name and a type", hint=f"type is one of {', '.join(RULE_TYPES)}")
        rule = cls(**data)
        rule._check()
        return rule

    def _check(self) -> None:
        where = f"rule {self.name!r}"
        if self.type not in RULE_TYPES:
            raise ConfigError(f"{where}: type {self.type!r} unknown", hint=f"use one of {', '.join(RULE_TYPES)}")
        if self.type in ("dwell", "count") and not self.zone:
            raise ConfigError(f"{where}: type {self.type} needs zone:", hint="name one of this source's zones")
        if self.type == "line_cross" and not self.line:
            raise ConfigError(f"{where}: type line_cross needs line:", hint="name one of this source's lines")
        if self.type == "dwell" and float(self.seconds) <= 0:
            raise ConfigError(f"{where}: seconds must be > 0", hint="e.g. seconds: 5")
        if self.type == "count" and int(self.above) < 0:
            raise ConfigError(f"{where}: above must be >= 0", hint="e.g. above: 3")
        if self.direction not in (None, "in", "out"):
            raise ConfigError(f"{where}: direction {self.direction!r}", hint="use in, out, or leave it out for both")


@dataclass
class Event:
    """One event: what fired, about what, where and when; ``to_record()`` is the uplink record."""

    rule: str
    kind: str
    source_id: str
    frame_index: int
    ts: float
    subject: str  # "track-<id>" or "count-<episode start frame>"
    track_id: Optional[int] = None
    class_name: Optional[str] = None
    zone: Optional[str] = None
    line: Optional[str] = None
    details: Dict[str, Any] = field(default_factory=dict)
    clip: Optional[str] = None  # path of the clip recorded for it, once known

    @property
    def event_id(self) -> str:
        key = f"{self.source_id}|{self.rule}|{self.subject}|{self.kind}|{self.details.get('episode', '')}"
        return hashlib.sha1(key.encode()).hexdigest()[:20]

    def to_record(self) -> Dict[str, Any]:
        rec: Dict[str, Any] = {"type": "event", "event_id": self.event_id, "rule": self.rule, "kind": self.kind,
                               "source_id": self.source_id, "frame_index": int(self.frame_index),
                               "ts": round(float(self.ts), 6)}
        for key in ("track_id", "class_name", "zone", "line", "clip"):
            value = getattr(self, key)
            if value is not None:
                rec[key] = value
        if self.details:
            rec["details"] = dict(self.details)
        return rec


def class_ok(classes: Optional[Sequence[Any]], class_id: int, names: Dict[int, str]) -> bool:
    if not classes:
        return True
    return class_id in classes or names.get(class_id) in classes or str(class_id) in [str(c) for c in classes]


def resolve_class_ids(classes: Optional[Sequence[Any]], names: Dict[int, str]) -> Optional[List[int]]:
    """Class names or ids -> ids (None stays None: every class)."""
    if classes is None:
        return None
    by_name = {v: k for k, v in names.items()}
    out = []
    for c in classes:
        if isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
            out.append(int(c))
        elif c in by_name:
            out.append(by_name[c])
        else:
            raise ConfigError(f"class {c!r} is not one of the model's classes", hint=f"use one of {sorted(by_name)[:20]}")
    return out
