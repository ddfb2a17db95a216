"""Video analytics on the device, after post-processing and before sinks/uplink: ByteTrack tracking,
polygon zones and counting lines, rules that emit events, and event clips.

Example:
    >>> from edgeinfer.analytics import Analytics
    >>> Analytics(tracker="bytetrack").tracker_name
    'bytetrack'
"""
from __future__ import annotations

from .bytetrack import ByteTrackConfig, ByteTracker, make_tracker
from .engine import Analytics
from .rules import Event, Rule

__all__ = ["Analytics", "ByteTrackConfig", "ByteTracker", "Event", "Rule", "make_tracker"]
