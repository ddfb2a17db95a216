"""What `edgeinfer doctor` found: one :class:`Check` per line, gathered in a :class:`DoctorReport`.

Example:
    >>> r = DoctorReport(checks=[Check("cuda", OK, "CUDA 12.6.68")], host={}, device=None, features={})
    >>> r.status, r.exit_code
    ('ok', 0)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
_RANK = {SKIP: 0, OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is OK, WARN, FAIL or SKIP (not applicable on this machine);
    ``hint`` says what to do about a WARN or FAIL."""

    name: str
    status: str
    message: str
    hint: Optional[str] = None
    data: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message, "hint": self.hint,
                "data": self.data}


@dataclass(frozen=True)
class DoctorReport:
    """All checks plus what the machine is and which edgeinfer features work on it."""

    checks: List[Check]
    host: Dict[str, Any]
    device: Optional[Dict[str, Any]]
    features: Dict[str, Optional[bool]]

    @property
    def status(self) -> str:
        worst = max((_RANK[c.status] for c in self.checks), default=0)
        return {0: "ok", 1: "warn", 2: "fail"}[worst]

    @property
    def exit_code(self) -> int:
        """1 when any check FAILs (so a container HEALTHCHECK turns unhealthy), else 0."""
        return 1 if self.status == "fail" else 0

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> Dict[str, Any]:
        counts = {s.lower(): sum(1 for c in self.checks if c.status == s) for s in (OK, WARN, FAIL, SKIP)}
        return {"status": self.status, "summary": counts, "host": self.host, "device": self.device,
                "features": self.features, "checks": [c.to_dict() for c in self.checks]}

    def format_text(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = []
        for c in self.checks:
            lines.append(f"[{c.status:<4}] {c.name:<{width}}  {c.message}")
            if c.hint and c.status in (WARN, FAIL):
                lines.append(f"       {'':<{width}}  -> {c.hint}")
        works = [k for k, v in self.features.items() if v]
        unknown = [k for k, v in self.features.items() if v is None]
        missing = [k for k, v in self.features.items() if v is False]
        lines.append("")
        lines.append("works here:     " + (", ".join(works) or "nothing yet"))
        lines.append("not available:  " + (", ".join(missing) or "-"))
        if unknown:
            lines.append("not probed:     " + ", ".join(unknown) + " (--quick)")
        lines.append(f"overall: {self.status.upper()}")
        return "\n".join(lines)
