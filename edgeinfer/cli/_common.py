"""Helpers shared by CLI commands: JSON output and option parsing."""
from __future__ import annotations

import json
from typing import Any

import click


def echo_json(data: Any) -> None:
    """Print ``data`` as stable, sorted, indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
