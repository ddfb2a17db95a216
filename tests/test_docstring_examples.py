"""Every `Example:` in edgeinfer's docstrings runs (doctest), so the docs cannot rot.

Examples that need hardware, a network or large files are marked `# doctest: +SKIP` in place.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import edgeinfer

MODULES = sorted(m.name for m in pkgutil.walk_packages(edgeinfer.__path__, "edgeinfer.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
