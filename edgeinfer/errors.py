"""One exception root for everything a user can cause.

Every message says *what* went wrong, and a ``hint`` says how to fix it. The CLI prints
``error: <message>`` plus the hint on one or two lines and exits 1, never with a traceback.
Bugs in edgeinfer itself raise :class:`InternalError`, which is deliberately *not* a subclass
of :class:`EdgeInferError`, so the CLI lets its traceback through.

Example:
    >>> from edgeinfer.errors import ProfileError
    >>> str(ProfileError("unknown device 'orin-nx'", hint="did you mean 'orin-nx-16gb'?"))
    "unknown device 'orin-nx'. Hint: did you mean 'orin-nx-16gb'?"
"""
from __future__ import annotations

from typing import Optional


class EdgeInferError(Exception):
    """Root of all user-facing errors: bad input, missing dependency, mismatched device."""

    def __init__(self, message: str, *, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message.rstrip('.')}. Hint: {self.hint}"
        return self.message


class ConfigError(EdgeInferError):
    """A bad argument, option or configuration value."""


class MissingDependencyError(EdgeInferError):
    """An optional or hardware-only package is not importable here."""


class ProfileError(EdgeInferError):
    """A device profile is invalid, unknown or ambiguous."""


class ModelError(EdgeInferError):
    """A model file cannot be read, validated or converted."""


class QuantizeError(EdgeInferError):
    """Calibration data or INT8 conversion failed, or the accuracy budget cannot hold."""


class PlacementError(EdgeInferError):
    """A DLA/GPU placement request cannot be satisfied."""


class BundleError(EdgeInferError):
    """A bundle is missing, tampered with, or of an unknown schema."""


class BuildError(EdgeInferError):
    """A TensorRT engine build failed or is not possible on this machine."""


class EngineMismatchError(BundleError):
    """An engine does not match the running device (module, JetPack, TensorRT, SM, DLA core)."""


class BackendError(EdgeInferError):
    """An inference backend failed to load or run."""


class SourceError(EdgeInferError):
    """A video/image source cannot be opened or read."""


class SinkError(EdgeInferError):
    """An output sink cannot be opened or written."""


class UplinkError(EdgeInferError):
    """The uplink is misconfigured (network trouble is never raised to the producer)."""


class InternalError(Exception):
    """An invariant inside edgeinfer broke: a bug to report, not a user error."""
