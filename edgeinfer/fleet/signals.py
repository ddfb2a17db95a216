"""Graceful stop: SIGTERM behaves like Ctrl-C, also as PID 1 in a container; stale temp files are swept.

``docker stop``, systemd and Kubernetes send SIGTERM. Python's default leaves SIGTERM to the
kernel, which kills the process at once (no drain, no stats, a hidden ``.tmp.mp4`` left behind) and,
for PID 1 in a container, ignores it entirely (the kernel never applies a default action to init),
so the container dies only at the SIGKILL after the grace period. :func:`install_sigterm` installs
an explicit handler that raises :class:`Terminated` (a KeyboardInterrupt) in the main thread: every
path that cleans up on Ctrl-C cleans up on SIGTERM too. The CLI exits 143 (128 + SIGTERM) after it.

Example:
    >>> issubclass(Terminated, KeyboardInterrupt)
    True
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); open(os.path.join(d, ".out.mp4.1a2b3c4d.tmp.mp4"), "w").close()
    >>> [os.path.basename(p) for p in clean_stale_temps(os.path.join(d, "out.mp4"))]
    ['.out.mp4.1a2b3c4d.tmp.mp4']

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import glob
import logging
import os
import signal
import threading
from typing import Any, List

log = logging.getLogger(__name__)
EXIT_SIGTERM = 128 + int(signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM once :func:`install_sigterm` ran."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def install_sigterm() -> bool:
    """Make SIGTERM raise :class:`Terminated` in the main thread; False when not possible (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main interpreter
        return False
    return True


def redeliver(caught: List[int]) -> None:
    """After a deferred section: raise what the held signals would have raised (Terminated or KeyboardInterrupt)."""
    if not caught:
        return
    if signal.SIGTERM in caught and signal.getsignal(signal.SIGTERM) is _raise_terminated:
        raise Terminated()
    raise KeyboardInterrupt


def clean_stale_temps(final_path: str) -> List[str]:
    """Delete hidden temp siblings (``.NAME.<8 hex>.tmp<ext>``) that a killed run left next to ``final_path``."""
    folder, name = os.path.split(os.path.abspath(final_path))
    ext = os.path.splitext(name)[1]
    pattern = os.path.join(glob.escape(folder), f".{glob.escape(name)}.{'[0-9a-f]' * 8}.tmp{glob.escape(ext)}")
    removed = []
    for path in glob.glob(pattern):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError as exc:
            log.warning("cannot remove stale temp file %s: %s", path, exc)
    if removed:
        log.warning("removed %d temp file(s) a previous run left behind: %s", len(removed), ", ".join(removed))
    return removed
