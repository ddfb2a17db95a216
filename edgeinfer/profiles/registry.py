"""The shipped profiles, looked up by name, alias or family.

Profiles live in ``edgeinfer/_data/device_profiles/`` inside the package, so a plain
(non-editable) install finds them; ``device_profiles/`` at the repo top is the canonical,
human-edited copy and a test fails when the two differ. ``EDGEINFER_PROFILES_DIR`` points the
registry at another directory (e.g. a fleet's own carrier-board profiles).

Names: a module name (``orin-nx-16gb``), an alias (``nano`` = jetson-nano, ``thor`` = agx-thor),
a family (``orin``, ``orin-nano``, ``orin-nx``, ``agx-orin``, ``xavier``) or ``all``; a spec is a
comma list of them. Unknown names raise ProfileError with a "did you mean" suggestion, never a guess.

Example:
    >>> from edgeinfer.profiles import resolve_devices
    >>> [p.name for p in resolve_devices("orin-nx,xavier-nx")]
    ['xavier-nx', 'orin-nx-8gb', 'orin-nx-16gb']
"""
from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from ..errors import ProfileError
from .loader import load_profile
from .profile import DeviceProfile

ALL = "all"
_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "_data" / "device_profiles"


def profiles_dir() -> Path:
    """Where profiles are read from: ``$EDGEINFER_PROFILES_DIR`` or the copy inside the package."""
    override = os.environ.get("EDGEINFER_PROFILES_DIR")
    return Path(override) if override else _PACKAGE_DIR


def load_profiles(directory: Union[str, Path]) -> Tuple[DeviceProfile, ...]:
    """Load and validate every ``*.yaml`` in ``directory``, in catalogue order (by SM, then memory)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ProfileError(f"no device profiles (*.yaml) in {directory}",
                           hint="reinstall edgeinfer or point EDGEINFER_PROFILES_DIR at a profile directory")
    profiles = [load_profile(path) for path in files]
    _check_unique_names(profiles)
    return tuple(sorted(profiles, key=lambda p: (p.sm, p.memory_gb, p.name)))


def _check_unique_names(profiles: Sequence[DeviceProfile]) -> None:
    owner: Dict[str, str] = {}
    for p in profiles:
        for label in (p.name, *p.aliases):
            if label in owner and owner[label] != p.name:
                raise ProfileError(f"{p.source}: name or alias '{label}' is already used by '{owner[label]}'")
            owner[label] = p.name
    families = {f for p in profiles for f in p.families}
    clash = families & set(owner)
    if clash:
        raise ProfileError(f"family name(s) {sorted(clash)} collide with a profile name or alias")


@functools.lru_cache(maxsize=4)
def _catalogue(directory: str) -> Tuple[DeviceProfile, ...]:
    return load_profiles(directory)


def list_profiles() -> List[DeviceProfile]:
    """Every known profile, in catalogue order."""
    return list(_catalogue(str(profiles_dir())))


def families() -> Dict[str, List[str]]:
    """Family name -> profile names in it (catalogue order)."""
    out: Dict[str, List[str]] = {}
    for p in list_profiles():
        for family in p.families:
            out.setdefault(family, []).append(p.name)
    return out


def _lookup_table() -> Dict[str, List[DeviceProfile]]:
    profiles = list_profiles()
    table: Dict[str, List[DeviceProfile]] = {ALL: profiles}
    for p in profiles:
        table[p.name] = [p]
        for alias in p.aliases:
            table[alias] = [p]
        for family in p.families:
            table.setdefault(family, []).append(p)
    return table


def _unknown(term: str, table: Dict[str, List[DeviceProfile]]) -> ProfileError:
    """'did you mean': names whose modules run edgeinfer come first; packaging-only ones say so."""
    known = sorted(table)
    close = difflib.get_close_matches(term, known, n=3, cutoff=0.6)
    if close:
        def packaging_only(name: str) -> bool:
            return not any(p.runtime_supported for p in table[name])

        close.sort(key=packaging_only)  # stable: keeps difflib's closeness order within each group
        shown = [f"'{c}'" + (" (packaging only)" if packaging_only(c) else "") for c in close]
        also = f" (also close: {', '.join(shown[1:])})" if len(shown) > 1 else ""
        return ProfileError(f"unknown device '{term}'", hint=f"did you mean {shown[0]}?{also}")
    return ProfileError(f"unknown device '{term}'", hint="known names: " + ", ".join(known))


def get_profile(name: str) -> DeviceProfile:
    """One profile by exact name or alias; a family name is an error here (it names several).

    Example:
        >>> get_profile("thor").name
        'agx-thor'
    """
    table = _lookup_table()
    key = str(name).strip().lower()
    hits = table.get(key)
    if hits is None:
        raise _unknown(key, table)
    if len(hits) != 1 or key == ALL:
        raise ProfileError(f"'{key}' names several devices ({', '.join(p.name for p in hits)})",
                           hint="pick one of them, or use resolve_devices() for a family")
    return hits[0]


def explain_resolution(spec: Union[str, Sequence[str]]) -> List[Tuple[str, List[str]]]:
    """Each term of ``spec`` with the profile names it selects (what ``edgeinfer profiles resolve`` prints)."""
    terms = _split(spec)
    table = _lookup_table()
    out = []
    for term in terms:
        if term not in table:
            raise _unknown(term, table)
        out.append((term, [p.name for p in table[term]]))
    return out


def resolve_devices(spec: Union[str, Sequence[str]]) -> List[DeviceProfile]:
    """Profiles selected by a comma list of names/aliases/families; deduplicated, catalogue order."""
    selected = {name for _, names in explain_resolution(spec) for name in names}
    return [p for p in list_profiles() if p.name in selected]


def _split(spec: Union[str, Sequence[str]]) -> List[str]:
    parts = spec.split(",") if isinstance(spec, str) else [t for item in spec for t in str(item).split(",")]
    terms = [t.strip().lower() for t in parts if t.strip()]
    if not terms:
        raise ProfileError("no device given", hint="name one or more profiles, e.g. 'orin-nx-16gb' or 'orin,xavier'")
    return terms
