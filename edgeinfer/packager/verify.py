"""The packager's NVIDIA-parser step: check the staged bundle just before it is published.

``--verify`` (default: on when TensorRT or TensorRT-RTX is importable) runs
:func:`edgeinfer.engine.nvparse.verify_manifest` on the bundle's staging directory. A bundle whose ONNX the
parser rejects, or whose pins name layers the parsed network lacks, is not written, unless
``--allow-parser-errors``; either way the result is recorded in the manifest under ``verification``.

Example:
    >>> step = verification_step(verify=False, allow_errors=False, say=print)
    >>> step is None
    True
"""
from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from ..errors import BundleError, MissingDependencyError

Report = Callable[[str], None]
ORACLE_NOTE = ("a verification oracle (NVIDIA's ONNX parser and builder, ahead of time on this host); "
               "nothing was built or run on a Jetson")


def verification_step(*, verify: bool | None, allow_errors: bool, say: Report) -> Callable[[Any], None] | None:
    """Resolve ``--verify`` now (fail fast, before calibration) and return the check to run on the writer."""
    from ..engine.parser_oracle import load_oracle

    if verify is False:
        return None
    try:  # imported now: a parser that is installed but cannot load is reported before any slow step
        oracle = load_oracle()
    except MissingDependencyError as exc:
        if verify:
            raise
        say(f"verify: skipped ({exc.message}; {exc.hint})")
        return None

    def check(writer: Any) -> None:
        _check_staged(writer, oracle, allow_errors=allow_errors, say=say)

    return check


def _check_staged(writer: Any, oracle: Any, *, allow_errors: bool, say: Report) -> None:
    from ..engine.nvparse import verify_manifest_in_child

    # the parser was loaded here to fail fast; the checks run in a child, where a native crash cannot take the
    # packager (and its staging clean-up) down with it
    report = verify_manifest_in_child(writer.manifest(), writer.staging_dir, module=oracle.module_name)
    for c in report.checks:
        state = "ok" if c.ok else ("parse FAILED" if not c.parsed else "build FAILED")
        built = f", built {c.engine_bytes / 1e6:.1f} MB in {c.build_s:.1f} s" if c.built else ""
        say(f"verify: {report.parser}: {'/'.join(c.kinds)} {c.artifact} ({c.typing}ly typed) {state}: "
            f"{c.num_layers} layers{built}")
    for line in report.warnings():
        say(f"verify: warning: {line}")
    writer.set_section("verification", summary(report, allowed_errors=allow_errors and not report.ok))
    problems = report.problems()
    if problems and not allow_errors:
        more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise BundleError(f"bundle not written: {problems[0]}{more}",
                          hint="fix the model and re-package, or pass --allow-parser-errors to write it anyway "
                               "(the problems are recorded in the manifest)")
    for line in problems:
        say(f"verify: written anyway (--allow-parser-errors): {line}")


def summary(report: Any, *, allowed_errors: bool) -> dict[str, Any]:
    """The manifest's ``verification`` section: compact, YAML-safe."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {
        "checked_by": report.parser, "onnx_parser_version": report.onnx_parser_version, "checked_at": now,
        "what": ORACLE_NOTE, "ok": report.ok, "engines_built_ahead_of_time": report.built,
        "written_despite_errors": allowed_errors,
        "artifacts": [{"artifact": c.artifact, "kinds": list(c.kinds), "typing": c.typing, "parsed": c.parsed,
                       "built": c.built, "layers": c.num_layers, "errors": [e.line() for e in c.errors]}
                      for c in report.checks],
        "missing_pins": [{"device": m.device, "source": m.source, "artifact": m.artifact, "names": list(m.names)}
                         for m in report.missing_pins],
        "problems": report.problems(), "warnings": report.warnings(),
        "not_checked": [d["key"] for d in report.not_checked],
    }
