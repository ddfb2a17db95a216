"""Progress lines for long packaging steps (calibration images, calibration, accuracy gate).

``progress(label, done, total)`` callbacks come from edgeinfer.quantize. On a terminal the line
is redrawn in place; without one (CI logs, ``nohup``, systemd, a pipe) a new line is printed each
time another ``step_percent`` of the work is done, so a log shows the pace and not only a start
and an end. Every line carries the elapsed time and an ETA from the rate so far.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> p = ProgressLine(stream=out, step_percent=50, clock=iter(range(0, 100, 2)).__next__)
    >>> for i in range(1, 5):
    ...     p("calibrate", i, 4)
    >>> print(out.getvalue().rstrip())
      calibrate                 25%      1/4      elapsed 0s
      calibrate                 50%      2/4      elapsed 2s, ETA 4s
      calibrate                100%      4/4      elapsed 6s
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes}m{secs:02d}s"


class ProgressLine:
    """``progress(label, done, total)`` callback printing to ``stream`` (default stderr).

    Args:
        step_percent: without a terminal, print a line each time this much more is done (and at 100 %).
        tty: force terminal (True) or line (False) mode; default: ``stream.isatty()``.
        clock: monotonic seconds (tests inject one).
    """

    def __init__(self, *, stream: Optional[TextIO] = None, step_percent: int = 10, tty: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream: Any = stream
        self._step = max(1, int(step_percent))
        self._tty = tty
        self._clock = clock
        self._label: Optional[str] = None
        self._start = 0.0
        self._start_done = 0
        self._printed = -1  # last printed step bucket

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def __call__(self, label: str, done: int, total: int) -> None:
        now = self._clock()
        total = max(int(total), 1)
        done = min(max(int(done), 0), total)
        if label != self._label:  # a new step: its clock starts at its first report
            self._label, self._start, self._start_done, self._printed = label, now, done, -1
        percent = 100 * done // total
        elapsed = now - self._start
        tail = f"elapsed {_seconds(elapsed)}"
        if self._start_done < done < total:
            tail += f", ETA {_seconds(elapsed * (total - done) / (done - self._start_done))}"
        line = f"  {label:<24} {percent:>3d}% {done:>6d}/{total:<6d} {tail}"
        tty = self.stream.isatty() if self._tty is None else self._tty
        if tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
            self.stream.flush()
            return
        bucket = 100 if done >= total else percent // self._step
        if bucket > self._printed:
            self._printed = bucket
            self.stream.write(line + "\n")
            self.stream.flush()
