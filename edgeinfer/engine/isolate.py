"""Run native toolchain code (NVIDIA's parser and builder) in a child process, so its crash is our error.

NVIDIA's ONNX parser and builder are native code. On an unusual model, or next to another native library that
loaded a conflicting dependency into the same process, they can die with SIGSEGV or SIGABRT (TensorRT-RTX did,
in-process, once GStreamer pipelines had run in the same test process). In-process that ends the packager in the
middle of writing a bundle: no message, no clean-up of the staging directory. :func:`call_in_child` runs the
work in a fresh interpreter (``spawn``: it loads only what the work imports); a crash there becomes a
:class:`~edgeinfer.errors.BuildError` that names the signal, and the caller cleans up as on any other error.
The child is killed if the caller is interrupted (Ctrl-C, SIGTERM) or fails while waiting.

Example:
    >>> call_in_child(divmod, 7, 2, what="divmod")
    (3, 1)
"""
from __future__ import annotations

import multiprocessing
import signal
from typing import Any, Callable, Tuple

from .. import errors
from ..errors import BuildError, EdgeInferError

POLL_S = 0.2


def call_in_child(target: Callable[..., Any], *args: Any, what: str) -> Any:
    """``target(*args)`` in a spawned child; its result, or its exception re-raised here.

    ``target`` and ``args`` must be picklable (a module-level function, plain data). ``what`` names the work in
    the error when the child dies without an answer.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(sender, target, args), name=f"edgeinfer-{what}", daemon=True)
    proc.start()
    sender.close()  # only the child writes: EOF here when it dies
    try:
        answer = _wait(receiver, proc)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receiver.close()
    if answer is None:
        raise BuildError(f"{what} crashed: the child process running it {describe_exit(proc.exitcode)}",
                         hint="this is a crash inside NVIDIA's native code, not a verdict on the model; re-run to "
                              "confirm, package with --no-verify to skip the check, and report the model to NVIDIA")
    ok, payload = answer
    if ok:
        return payload
    raise _rebuild(payload)


def _wait(receiver: Any, proc: Any) -> Any:
    while True:
        if receiver.poll(POLL_S):
            try:
                return receiver.recv()
            except EOFError:  # the child closed its end without an answer: it died
                return None
        if not proc.is_alive() and not receiver.poll(0):
            return None


def describe_exit(code: Any) -> str:
    """``exitcode`` of a child process in words.

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


def _child_main(sender: Any, target: Callable[..., Any], args: Tuple[Any, ...]) -> None:
    try:
        answer: Tuple[bool, Any] = (True, target(*args))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent, which decides
        answer = (False, (type(exc).__name__, getattr(exc, "message", str(exc)), getattr(exc, "hint", None)))
    try:
        sender.send(answer)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result
        sender.send((False, ("BuildError", f"the result of the child's work could not be sent back: {exc}", None)))
    finally:
        sender.close()


def _rebuild(payload: Tuple[str, str, Any]) -> BaseException:
    """The child's exception as the same edgeinfer error class (by name), else a BuildError."""
    name, message, hint = payload
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, EdgeInferError):
        return cls(message, hint=hint)
    if name == "KeyboardInterrupt":
        return KeyboardInterrupt()
    return BuildError(f"{name} in the child process: {message}", hint=hint)
