"""Run native toolchain code (NVIDIA's parser and builder) in a child process, so its crash is our error.

NVIDIA's ONNX parser and builder are native code. On an unusual model, or next to another native library that
loaded a conflicting dependency into the same process, they can die with SIGSEGV or SIGABRT (TensorRT-RTX does,
in-process, once GStreamer has been loaded in the same process). In-process that ends the packager in the middle
of writing a bundle: no message, no clean-up of the staging directory. :func:`call_in_child` runs the work in a
fresh interpreter (``python -m edgeinfer.engine.isolate``, with this process's ``sys.path``; unlike
multiprocessing's ``spawn`` it does not re-import the caller's ``__main__``, so it works from ``python -``, ``-c``
and notebooks); a crash there becomes a :class:`~edgeinfer.errors.BuildError` that names the signal and quotes
the child's last stderr lines, and the caller cleans up as on any other error. The child is killed if the caller
is interrupted (Ctrl-C, SIGTERM) or fails while waiting.

Example:
    >>> call_in_child(divmod, 7, 2, what="divmod")
    (3, 1)
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from typing import Any, Callable, Tuple

from .. import errors
from ..errors import BuildError, EdgeInferError

STDERR_TAIL = 600  # characters of the child's stderr quoted when it dies without an answer


def call_in_child(target: Callable[..., Any], *args: Any, what: str) -> Any:
    """``target(*args)`` in a child interpreter; its result, or its exception re-raised here.

    ``target`` must be importable by name (a module-level function) and ``args`` and the result picklable.
    ``what`` names the work in the error when the child dies without an answer.
    """
    if not sys.executable:
        raise BuildError(f"cannot run {what} in a child process: this Python has no sys.executable",
                         hint="run edgeinfer from a regular Python interpreter")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    request = pickle.dumps((target, args), protocol=pickle.HIGHEST_PROTOCOL)
    with tempfile.TemporaryFile() as answer_file, tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "edgeinfer.engine.isolate"], stdin=subprocess.PIPE,
                                stdout=answer_file, stderr=err_file, env=env)
        try:
            proc.communicate(request)
        finally:
            if proc.poll() is None:  # interrupted while waiting: the child must not outlive the call
                proc.kill()
                proc.wait()
        answer_file.seek(0)
        raw = answer_file.read()
        err_file.seek(0)
        stderr = err_file.read().decode(errors="replace")
    answer = _load(raw)
    if answer is None:
        last = " ".join(stderr.strip().splitlines()[-3:])[-STDERR_TAIL:]
        raise BuildError(f"{what} crashed: the child process running it {describe_exit(proc.returncode)}"
                         + (f" (last output: {last})" if last else ""),
                         hint="this is a crash inside native code, not a verdict on the model; re-run to "
                              "confirm, package with --no-verify to skip the check, and report the model to NVIDIA")
    ok, payload = answer
    if ok:
        return payload
    raise _rebuild(payload)


def _load(raw: bytes) -> Any:
    marker = raw.rfind(_MARK)
    if marker < 0:
        return None
    try:
        return pickle.loads(raw[marker + len(_MARK):])
    except Exception:  # noqa: BLE001 - a truncated answer: the child died while writing it
        return None


_MARK = b"\x00edgeinfer-answer\x00"  # native code may print to stdout too: the answer follows the last mark


def describe_exit(code: Any) -> str:
    """A child's return code in words.

    Example:
        >>> describe_exit(-11)
        'was killed by signal 11 (SIGSEGV)'
    """
    if code is None:
        return "did not finish"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code} without an answer"


def _child_main() -> None:
    out = sys.stdout.buffer
    try:
        target, args = pickle.loads(sys.stdin.buffer.read())
        answer: Tuple[bool, Any] = (True, target(*args))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent, which decides
        answer = (False, (type(exc).__name__, getattr(exc, "message", str(exc)), getattr(exc, "hint", None)))
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result
        data = pickle.dumps((False, ("BuildError", f"the child's result could not be sent back: {exc}", None)))
    sys.stdout.flush()
    out.write(_MARK + data)
    out.flush()


def _rebuild(payload: Tuple[str, str, Any]) -> BaseException:
    """The child's exception as the same edgeinfer error class (by name), else a BuildError."""
    name, message, hint = payload
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, EdgeInferError):
        return cls(message, hint=hint)
    if name == "KeyboardInterrupt":
        return KeyboardInterrupt()
    return BuildError(f"{name} in the child process: {message}", hint=hint)


if __name__ == "__main__":
    _child_main()
