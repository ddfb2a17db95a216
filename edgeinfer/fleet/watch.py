"""Watch a folder that an OTA tool fills with bundles; hot-swap the running pipeline to the newest valid one.

The OTA tool (Mender, balena, Greengrass, a Kubernetes volume, rsync + mv) delivers a bundle by an
atomic rename into the folder, or flips a ``current`` symlink to one. Polling (every ``interval``
seconds, default 1 s) works on every file system, container overlay and network mount, needs no
inotify and costs one ``scandir`` per poll. Hidden entries (``.NAME.partial-*``, ``.tmp``) are
never considered, so a half-copied bundle is not seen until its final rename.

Choice: ``current`` (a symlink, when present) names the bundle to run; otherwise the newest bundle
by manifest ``created`` then modification time. A candidate is verified (checksums, signature when
trust is configured, an entry for this device), then handed to ``Pipeline.swap_model`` (load, warm,
switch, health check, rollback). A refused or rolled-back bundle is remembered by its manifest hash
and not retried until it changes. After a commit, bundles older than the last ``keep`` are deleted.

Example:
    >>> import tempfile
    >>> BundleWatcher(tempfile.mkdtemp()).candidates()
    []

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import BundleError, ConfigError, EdgeInferError
from .trust import TrustStore, manifest_sha256

log = logging.getLogger(__name__)
CURRENT_LINK = "current"


class BundleWatcher:
    """Polls ``folder``; with a pipeline attached, swaps it to each new valid bundle."""

    def __init__(self, folder: Any, *, pipeline: Any = None, interval: float = 1.0, keep: int = 3, trust: Any = None,
                 device: Optional[str] = None, policy: Any = None,
                 on_report: Optional[Callable[[Any], None]] = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ConfigError(f"--watch folder {self.folder} does not exist", hint="create it, or point --watch at the OTA target folder")
        if interval <= 0 or keep < 1:
            raise ConfigError("--watch-interval must be > 0 and --keep >= 1", hint="e.g. --watch-interval 1 --keep 3")
        self.pipeline, self.interval, self.keep = pipeline, float(interval), int(keep)
        self.store = trust if isinstance(trust, TrustStore) else TrustStore.from_config(files=list(trust or []))
        self.device, self.policy, self.on_report = device, policy, on_report
        self.active: Optional[Tuple[Path, str]] = None  # (path, manifest sha256) running now
        self.history: List[Path] = []  # committed bundles, oldest first
        self.rejected: Dict[Tuple[str, str], str] = {}  # (path, fingerprint) -> reason, not retried
        self.reports: List[Any] = []
        self.appeared: Dict[str, float] = {}  # path -> perf_counter() when first seen (swap latency)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- what is in the folder ----------------------------------------------------------------
    def candidates(self) -> List[Path]:
        """Bundle directories and .tar files in the folder, newest first (hidden and temp entries skipped)."""
        found = []
        for entry in os.scandir(str(self.folder)):
            if entry.name.startswith(".") or entry.name == CURRENT_LINK or entry.name.endswith((".partial", ".tmp")):
                continue
            path = Path(entry.path)
            if (path / "manifest.yaml").is_file() or (path.is_file() and path.name.endswith(".tar")):
                self.appeared.setdefault(str(path), time.perf_counter())
                found.append(path)
        return sorted(found, key=_age_key, reverse=True)

    def wanted(self) -> List[Path]:
        """The bundle ``current`` points at, or every candidate newest first."""
        link = self.folder / CURRENT_LINK
        if link.is_symlink() or link.exists():
            target = link.resolve()
            self.appeared.setdefault(str(target), time.perf_counter())
            return [target] if target.exists() else []
        return self.candidates()

    def verify(self, path: Path, *, checksums: bool = True) -> str:
        """Checksums, signature and device entry; returns the manifest sha256, raises EdgeInferError.

        ``checksums=False`` (a bundle directory about to be swapped in): manifest, signature and device
        only; ``edgeinfer.load`` hashes every file right after, so the bundle is not hashed twice.
        """
        from ..bundle import Bundle, open_bundle
        from ..bundle.manifest import MANIFEST_NAME, load_manifest_text

        if checksums or not path.is_dir():
            bundle = open_bundle(path)
        else:
            try:
                text = (path / MANIFEST_NAME).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BundleError(f"cannot read {path / MANIFEST_NAME}: {exc}", hint="deliver the whole bundle again") from exc
            bundle = Bundle(path, load_manifest_text(text, source=str(path / MANIFEST_NAME)))
        self.store.verify(bundle)
        if self.device and self.device not in bundle.devices:
            raise BundleError(f"bundle {path.name} has no entry for this device {self.device!r} (it has {', '.join(bundle.devices)})",
                              hint=f"package it with --device {self.device}")
        return manifest_sha256(bundle.root)

    def newest_valid(self) -> Path:
        """The bundle to start with: the newest one that verifies (refused ones are logged and skipped)."""
        for path in self.wanted():
            try:
                digest = self.verify(path)
            except EdgeInferError as exc:
                self._reject(path, exc.message)
                continue
            self.active = (path, digest)
            self.history.append(path)
            return path
        raise ConfigError(f"no valid bundle in {self.folder}" + (f" ({'; '.join(self.rejected.values())})" if self.rejected else ""),
                          hint="copy a (signed) bundle into the folder, or pass BUNDLE")

    # -- polling --------------------------------------------------------------------------------
    def poll_once(self) -> Optional[Any]:
        """One look at the folder; swaps when the wanted bundle changed. Returns the SwapReport, if any."""
        for path in self.wanted():
            fp = _fingerprint(path)
            if (str(path), fp) in self.rejected:
                continue
            if self.active is not None and path == self.active[0] and self._same_manifest(path):
                return None
            return self._try(path, fp)
        return None

    def _same_manifest(self, path: Path) -> bool:
        try:
            return manifest_sha256(path) == self.active[1]
        except OSError:
            return True  # a .tar or a bundle being replaced right now: look again next poll

    def _try(self, path: Path, fp: str) -> Optional[Any]:
        from .hotswap import SwapReport

        try:
            digest = self.verify(path, checksums=False)
        except EdgeInferError as exc:
            report = SwapReport("refused", from_model_id=self.pipeline.model_id if self.pipeline else None,
                                reason=exc.message, path=str(path))
            self._reject(path, exc.message, fp, quiet=self.pipeline is not None)
            if self.pipeline is not None:
                self.pipeline._record_swap(report)
            return self._done(report)
        report = self.pipeline.swap_model(str(path), policy=self.policy)
        if report.status == "committed" or report.status == "unchanged":
            self.active = (path, digest)
            self.history = [p for p in self.history if p != path] + [path]
            self.prune()
        else:
            self._reject(path, report.reason, fp, quiet=True)
        return self._done(report)

    def _done(self, report: Any) -> Any:
        report.health.setdefault("appeared_mono", self.appeared.get(str(report.path)))
        self.reports.append(report)
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _reject(self, path: Path, reason: str, fp: Optional[str] = None, *, quiet: bool = False) -> None:
        key = (str(path), fp or _fingerprint(path))
        if key not in self.rejected and not quiet:  # with a pipeline, the swap report is the log line
            log.error("bundle %s refused: %s", path, reason)
        self.rejected[key] = reason

    def prune(self) -> List[Path]:
        """Keep the ``keep`` newest bundles up to the running one (and the last ``keep`` committed, the
        ``current`` target, anything newer); delete the older rest."""
        if self.active is None:
            return []
        active_key = _age_key(self.active[0])
        older = [p for p in self.candidates() if _age_key(p) <= active_key]
        keep = set(older[: self.keep]) | set(self.history[-self.keep:]) | {self.active[0]}
        link = self.folder / CURRENT_LINK
        if link.is_symlink():
            keep.add(link.resolve())
        removed = []
        for path in older:
            if path in keep:
                continue
            try:
                if path.is_dir():
                    shutil.rmtree(str(path))
                else:
                    path.unlink()
                removed.append(path)
                log.info("pruned old bundle %s (keeping the last %d)", path, self.keep)
            except OSError as exc:
                log.warning("cannot prune %s: %s", path, exc)
        return removed

    # -- thread ---------------------------------------------------------------------------------
    def start(self) -> "BundleWatcher":
        self._thread = threading.Thread(target=self._run, name="fleet-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.pipeline is not None and not self.pipeline.running:
                return
            try:
                self.poll_once()
            except Exception:  # the watcher must outlive a bad bundle or a transient file-system error
                log.exception("bundle watcher poll failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _fingerprint(path: Path) -> str:
    """Changes when the bundle at ``path`` is replaced or its signature added (cheap: two stats)."""
    parts = []
    for p in (path / "manifest.yaml", path / "manifest.sig", path):
        try:
            st = p.stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def _age_key(path: Path) -> Tuple[str, int]:
    created = ""
    try:
        with open(str(path / "manifest.yaml"), encoding="utf-8") as fh:
            for _, line in zip(range(8), fh):
                if line.startswith("created:"):
                    created = line.split(":", 1)[1].strip().strip("'\"")
                    break
    except OSError:
        pass
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return created, mtime
