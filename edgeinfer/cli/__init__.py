"""The ``edgeinfer`` command line: thin click commands over the library.

Each subcommand lives in its own module and is imported only when invoked, so
``edgeinfer --help`` and ``edgeinfer <cmd> --help`` work with only the core installed.
"""
from __future__ import annotations

from ._main import cli, main

__all__ = ["cli", "main"]
