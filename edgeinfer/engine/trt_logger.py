"""The one TensorRT logger of the process.

TensorRT keeps a single logger pointer for the whole process: a builder, runtime or refitter
created with a *different* logger while another one is alive silently gets the first one
("TensorRT maintains only a single logger pointer at any given time, so the existing value ...
will be used instead", the warning quoted in NVIDIA/TensorRT issues #1475 and #1539). A second
logger would therefore never see the messages of the build it was made for, and a failed build
would report "no error text". So edgeinfer makes exactly one logger per ``tensorrt`` module and
hands it to every Builder, OnnxParser and Runtime; callers that want the errors of one step
take a :meth:`CollectingLogger.mark` before it and read :meth:`CollectingLogger.errors_since`.

Device-side code: Python 3.8-clean; never imports TensorRT itself.

Example:
    >>> class FakeTrt:
    ...     class ILogger:
    ...         ERROR, INTERNAL_ERROR, WARNING, INFO = range(4)
    ...         def __init__(self): pass
    >>> logger = make_logger(FakeTrt)
    >>> logger is make_logger(FakeTrt)
    True
    >>> mark = logger.mark(); logger.log(FakeTrt.ILogger.ERROR, "boom"); logger.errors_since(mark)
    ['boom']
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Dict, List, Tuple

log = logging.getLogger("edgeinfer.engine.trt_shim")

_KEEP = 200  # recent error lines kept; older ones are only in the Python log
_LOCK = threading.Lock()
_LOGGERS: Dict[int, Tuple[Any, Any]] = {}  # id(tensorrt module) -> (module, logger): one per module object


def make_logger(trt: Any) -> Any:
    """The process-wide logger for ``trt`` (created on first use): forwards to Python logging and
    keeps recent ERROR lines so a BuildError can quote them."""
    with _LOCK:
        found = _LOGGERS.get(id(trt))
        if found is not None and found[0] is trt:
            return found[1]
        logger = _new_logger(trt)
        _LOGGERS[id(trt)] = (trt, logger)
        return logger


def _new_logger(trt: Any) -> Any:
    class CollectingLogger(trt.ILogger):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self._lock = threading.Lock()
            self._count = 0
            self._recent = collections.deque(maxlen=_KEEP)  # type: collections.deque

        @property
        def errors(self) -> List[str]:
            """The recent ERROR / INTERNAL_ERROR messages, oldest first."""
            with self._lock:
                return [msg for _, msg in self._recent]

        def mark(self) -> int:
            """A position to pass to :meth:`errors_since` (errors logged so far)."""
            with self._lock:
                return self._count

        def errors_since(self, mark: int) -> List[str]:
            """Errors logged after ``mark`` (as many as are still kept)."""
            with self._lock:
                return [msg for index, msg in self._recent if index >= mark]

        def log(self, severity: Any, msg: str) -> None:  # TensorRT calls this from any thread
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                with self._lock:
                    self._recent.append((self._count, str(msg)))
                    self._count += 1
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return CollectingLogger()
