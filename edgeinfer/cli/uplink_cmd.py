"""``edgeinfer uplink``: look at the uplink's disk spool without touching the network."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import click

from ._common import echo_json


@click.group("uplink")
def uplink() -> None:
    """Inspect the uplink's disk spool (store-and-forward queue)."""


@uplink.command("status", short_help="Show what a spool holds: queued, sent, dropped, last ack.")
@click.argument("spool_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the spool's counters as JSON on stdout.")
def status(spool_dir: str, as_json: bool) -> None:
    """Show queued records, spool bytes, oldest age, drops and last acknowledgement of SPOOL_DIR.

    Example: edgeinfer uplink status /var/lib/edgeinfer/spool --json
    """
    from ..uplink.status import read_spool_status

    info = read_spool_status(spool_dir)  # UplinkError for a missing / non-spool dir -> clean exit 1
    if as_json:
        echo_json(info)
        return
    for label, value in _rows(info):
        click.echo(f"{label:<14} {value}")


def _age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _rows(info: Dict[str, Any]):
    drops = info["drops"]
    by_reason = ", ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "none"
    last_ack = info["last_ack"]
    when = "never" if last_ack is None else (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last_ack)) + f" ({_age(info['last_ack_age_s'])} ago)")
    return [
        ("spool", info["spool_path"]),
        ("queued", info["queued"]),
        ("bytes", f"{info['spool_bytes']} (file {info['spool_file_bytes']})"),
        ("oldest age", _age(info["oldest_age_s"])),
        ("sent", info["sent"]),
        ("retries", info["retries"]),
        ("last ack", when),
        ("dropped", f"{info['dropped_total']} ({by_reason})"),
    ]
