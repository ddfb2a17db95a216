"""systemd notifications without a dependency: ``READY=1`` once running, ``WATCHDOG=1`` while frames flow.

With ``Type=notify`` and ``WatchdogSec=30`` in the unit, systemd sets ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC``; :class:`SystemdNotifier` then pings at half the watchdog period as long as the
pipeline runs and produces results (or has no connected source: waiting for a camera is not a hang).
A pipeline that stops producing while a source is connected stops pinging, and systemd restarts it.
Without ``NOTIFY_SOCKET`` it does nothing. Protocol: sd_notify(3), one datagram per message.

Example:
    >>> SystemdNotifier(pipeline=None, env={}).enabled
    False

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any, Mapping, Optional

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends READY=1, WATCHDOG=1 and STOPPING=1 to systemd's notify socket (when there is one)."""

    def __init__(self, pipeline: Any, *, env: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if env is None else env
        self.pipeline = pipeline
        self.address = env.get("NOTIFY_SOCKET") or ""
        if self.address.startswith("@"):  # abstract namespace socket
            self.address = "\0" + self.address[1:]
        usec = env.get("WATCHDOG_USEC", "")
        self.period = int(usec) / 1e6 / 2.0 if usec.isdigit() and int(usec) > 0 else None
        self._stop = threading.Event()
        self._last_frames = -1

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> bool:
        if not self.enabled:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self.address)
            return True
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", message, exc)
            return False

    def alive(self) -> bool:
        """Running, and either results advanced since the last check or no source is connected."""
        p = self.pipeline
        if p is None or not p.running:
            return False
        stats = p.stats()
        frames = int(stats.get("frames_out", 0))
        advanced, self._last_frames = frames > self._last_frames, frames
        connected = any(s.get("state") == "connected" for s in (stats.get("sources") or {}).values())
        return advanced or not connected

    def start(self) -> "SystemdNotifier":
        if not self.enabled:
            return self
        self.send("READY=1")
        if self.period:
            threading.Thread(target=self._run, name="sd-watchdog", daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if self.alive():
                self.send("WATCHDOG=1")

    def stop(self) -> None:
        self._stop.set()
        self.send("STOPPING=1")
