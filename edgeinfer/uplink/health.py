"""Health of the uplink's two threads, for ``Uplink.health()`` and a ``/readyz`` probe.

The sender sets a deadline before every step (a send: ``2 x timeout + 15 s``; a wait: its length)
and is "stuck" once it has not come back ``SLACK_S`` seconds after that deadline: a hang that the
network timeouts did not catch. Errors are kept with their time, so a probe can say "the disk is
full since 12:03" rather than "not ready". All fields are plain attributes written by the worker
threads and read without a lock (each is one object swap under the GIL).

Example:
    >>> h = Health(send_budget=35.0)
    >>> h.report(sender_alive=True, writer_alive=True, closed=False, state="idle")["ok"]
    True
    >>> h.writer_failed(OSError(28, "No space left on device"))
    True
    >>> h.report(sender_alive=True, writer_alive=True, closed=False, state="idle")["problems"]
    ['spool writes fail: [Errno 28] No space left on device']
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

SLACK_S = 30.0


class Health:
    """Heartbeat deadline, last success and last errors of the sender and spool writer threads."""

    def __init__(self, *, send_budget: float, slack: float = SLACK_S) -> None:
        self.send_budget, self.slack = float(send_budget), float(slack)
        self._due = time.monotonic() + self.send_budget + self.slack
        self.last_success: Optional[float] = None
        self.last_error: Optional[str] = None
        self.last_error_at: Optional[float] = None
        self.writer_error: Optional[str] = None
        self.sender_errors = self.writer_errors = 0

    # -- written by the sender thread
    def beat(self) -> None:
        """Start of a loop step: spool reads and writes come back within SQLite's 10 s lock wait."""
        self._due = time.monotonic() + 10.0 + self.slack

    def busy(self) -> None:
        self._due = time.monotonic() + self.send_budget + self.slack

    def idle(self, seconds: float) -> None:
        self._due = time.monotonic() + max(0.0, seconds) + self.slack

    def sent(self) -> None:
        self.last_success = time.time()

    def sender_failed(self, exc: BaseException) -> bool:
        """Record a sender loop error; True when it differs from the last one (worth a log line)."""
        self.sender_errors += 1
        return self._error(f"sender: {exc}")

    # -- written by the writer thread
    def writer_ok(self) -> None:
        self.writer_error = None

    def writer_failed(self, exc: BaseException) -> bool:
        """Record a failed move into the spool; True when it is new (worth a log line)."""
        text = str(exc)
        new = text != self.writer_error
        self.writer_error = text
        self.writer_errors += 1
        self._error(f"writer: {text}")
        return new

    def _error(self, text: str) -> bool:
        new = text != self.last_error
        self.last_error, self.last_error_at = text, time.time()
        return new

    # -- read by anyone
    def report(self, *, sender_alive: bool, writer_alive: bool, closed: bool, state: str) -> Dict[str, Any]:
        stuck = sender_alive and not closed and time.monotonic() > self._due
        problems = []
        if closed:
            problems.append("uplink is closed")
        else:
            if not sender_alive:
                problems.append("sender thread is not running")
            if not writer_alive:
                problems.append("spool writer thread is not running")
            if stuck:
                problems.append(f"sender stuck {time.monotonic() - self._due + self.slack:.0f} s past its deadline")
        if self.writer_error is not None:
            problems.append(f"spool writes fail: {self.writer_error}")
        return {"ok": not problems, "problems": problems, "state": state, "sender_alive": sender_alive,
                "writer_alive": writer_alive, "stuck": stuck, "last_success": self.last_success,
                "last_error": self.last_error, "last_error_at": self.last_error_at,
                "spool_write_error": self.writer_error, "sender_errors": self.sender_errors,
                "writer_errors": self.writer_errors}
