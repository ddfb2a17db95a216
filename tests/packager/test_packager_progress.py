"""Progress lines without a terminal: one per 10 % with elapsed time and ETA, not only start and end."""
from __future__ import annotations

import io
import re

from edgeinfer.packager.progress import ProgressLine


def test_a_line_per_step_with_elapsed_and_eta_without_a_terminal():
    out = io.StringIO()  # not a TTY: what a CI log or a pipe sees
    ticks = iter(float(i) for i in range(1000))
    p = ProgressLine(stream=out, step_percent=10, clock=lambda: next(ticks))
    for done in range(1, 201):
        p("calibrate (percentile)", done, 200)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0 % bucket (first report), 10 %, 20 %, ... 90 %, 100 %
    percents = [int(re.search(r"(\d+)%", line).group(1)) for line in lines]
    assert percents == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert all("elapsed" in line for line in lines)
    assert all("ETA" in line for line in lines[1:-1]) and "ETA" not in lines[-1]
    # one clock tick per report: at 50 % (done 100) 99 s have passed and 100 reports are left at ~1 s each
    assert "100/200" in lines[5] and "elapsed 1m39s, ETA 1m40s" in lines[5]
    assert "\r" not in out.getvalue()


def test_a_new_label_restarts_the_clock_and_a_terminal_redraws_in_place():
    out = io.StringIO()
    ticks = iter([0.0, 5.0, 100.0, 101.0])
    p = ProgressLine(stream=out, tty=True, clock=lambda: next(ticks))
    p("accuracy (fp32)", 1, 2)
    p("accuracy (fp32)", 2, 2)
    p("accuracy (int8)", 1, 2)
    p("accuracy (int8)", 2, 2)
    text = out.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 2  # redrawn, a newline only when a step ends
    assert "accuracy (int8)" in text and text.rstrip().endswith("elapsed 1s")
