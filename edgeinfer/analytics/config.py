"""Zones, lines and rules per source, from a YAML file or a dict.

.. code-block:: yaml

    sources:
      "*":                       # every source (a source id such as cam0 overrides it)
        frame_rate: 30           # optional: the tracker's and dwell clock's rate (default: the file's own)
        zones:
          - name: door
            points: [[100, 200], [300, 200], [300, 400], [100, 400]]
            classes: [person]    # names or ids; leave out for every class
        lines:
          - name: entry
            points: [[0, 240], [640, 240]]
        rules:
          - {name: loiter, type: dwell, zone: door, seconds: 5}
          - {name: crossed, type: line_cross, line: entry, direction: in}
          - {name: crowd, type: count, zone: door, above: 3}

Example:
    >>> cfg = load_config({"sources": {"*": {"lines": [{"name": "l", "points": [[0, 5], [9, 5]]}]}}})
    >>> cfg.for_source("cam7").lines[0]["name"]
    'l'
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from ..errors import ConfigError
from .rules import Rule

_SOURCE_KEYS = ("zones", "lines", "rules", "frame_rate")


@dataclass
class SourceConfig:
    zones: List[Dict[str, Any]] = field(default_factory=list)
    lines: List[Dict[str, Any]] = field(default_factory=list)
    rules: List[Rule] = field(default_factory=list)
    frame_rate: Optional[float] = None


@dataclass
class AnalyticsConfig:
    sources: Dict[str, SourceConfig] = field(default_factory=dict)

    def check_sources(self, source_ids) -> None:
        """Every configured source id (other than ``*``) must be one of the pipeline's sources."""
        unknown = sorted(set(self.sources) - {"*"} - {str(s) for s in source_ids})
        if unknown:
            raise ConfigError(f"the zones config names source(s) {unknown} that this run does not have",
                              hint=f"sources here: {sorted(str(s) for s in source_ids)} (use \"*\" for every source)")

    def for_source(self, source_id: str) -> SourceConfig:
        return self.sources.get(source_id) or self.sources.get("*") or SourceConfig()


def _source(sid: str, data: Any) -> SourceConfig:
    if data is None:
        return SourceConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"source {sid!r}: expected a mapping with {', '.join(_SOURCE_KEYS)}", hint="see docs/analytics.md")
    unknown = sorted(set(data) - set(_SOURCE_KEYS))
    if unknown:
        raise ConfigError(f"source {sid!r}: unknown key(s) {unknown}", hint=f"keys: {', '.join(_SOURCE_KEYS)}")
    zones, lines = list(data.get("zones") or []), list(data.get("lines") or [])
    for kind, items in (("zone", zones), ("line", lines)):
        for item in items:
            if not isinstance(item, dict) or "name" not in item or "points" not in item:
                raise ConfigError(f"source {sid!r}: {kind} {item!r} needs name: and points:",
                                  hint="e.g. {name: door, points: [[x, y], ...]}")
    from .zones import CountLine, Zone

    for z in zones:  # geometry errors now, at start-up, not at the first frame
        Zone(z["name"], z["points"], anchor=z.get("anchor", "bottom_center"))
    for ln in lines:
        CountLine(ln["name"], ln["points"], anchor=ln.get("anchor", "bottom_center"))
    rules = [Rule.from_dict(r) for r in (data.get("rules") or [])]
    zone_names = {z["name"] for z in zones}
    line_names = {ln["name"] for ln in lines}
    for r in rules:
        if r.zone and r.zone not in zone_names:
            raise ConfigError(f"rule {r.name!r} names zone {r.zone!r}, which source {sid!r} does not define",
                              hint=f"zones here: {sorted(zone_names) or 'none'}")
        if r.line and r.line not in line_names:
            raise ConfigError(f"rule {r.name!r} names line {r.line!r}, which source {sid!r} does not define",
                              hint=f"lines here: {sorted(line_names) or 'none'}")
    rate = data.get("frame_rate")
    if rate is not None and (not isinstance(rate, (int, float)) or rate <= 0):
        raise ConfigError(f"source {sid!r}: frame_rate {rate!r} must be a positive number", hint="e.g. frame_rate: 30")
    return SourceConfig(zones, lines, rules, float(rate) if rate else None)


def load_config(spec: Union[None, str, os.PathLike, Dict[str, Any]]) -> AnalyticsConfig:
    """From a YAML path or a dict (``None``: nothing configured)."""
    if spec is None:
        return AnalyticsConfig()
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        if not os.path.isfile(path):
            raise ConfigError(f"zones file {path!r} does not exist", hint="pass a YAML file (see docs/analytics.md)")
        import yaml

        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ConfigError(f"zones file {path!r} is not valid YAML: {str(exc).splitlines()[0]}",
                              hint="check the indentation and brackets") from exc
    else:
        data = spec
    where = f"{os.fspath(spec)}: " if isinstance(spec, (str, os.PathLike)) else ""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        raise ConfigError(f"{where}the analytics config needs a top-level 'sources:' mapping", hint="see docs/analytics.md")
    try:
        return AnalyticsConfig({str(k): _source(str(k), v) for k, v in data["sources"].items()})
    except ConfigError as exc:
        raise ConfigError(where + exc.message, hint=exc.hint) from None
