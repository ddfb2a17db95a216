"""`edgeinfer profiles`: list the Jetson device profiles, show one, or resolve a device spec."""
from __future__ import annotations

from typing import Any, Dict, List

import click

from ._common import echo_json


def _profile_json(profile: Any) -> Dict[str, Any]:
    data = profile.to_dict()
    data.update(sm=profile.sm, has_dla=profile.has_dla, tensorrt_versions=list(profile.tensorrt_versions))
    return data


def _jetpack_ranges(profile: Any) -> str:
    """"4.6-4.6.6, 5.0.2-5.1.6": one range per JetPack major, oldest to newest."""
    groups: Dict[str, List[str]] = {}
    for line in profile.jetpacks:
        groups.setdefault(line.jetpack.split(".")[0], []).append(line.jetpack)
    return ", ".join(v[0] if len(v) == 1 else f"{v[0]}-{v[-1]}" for v in groups.values())


def _table(rows: List[List[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout, one object per profile.")
@click.pass_context
def profiles(ctx: click.Context, as_json: bool) -> None:
    """List Jetson device profiles (name, module, SM, DLA cores, JetPacks, TensorRT versions).

    Names, aliases (nano, thor) and families (orin, orin-nano, orin-nx, agx-orin, xavier) are
    accepted wherever a device is asked for; see `edgeinfer profiles resolve`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..profiles import list_profiles

    items = list_profiles()
    if as_json:
        echo_json([_profile_json(p) for p in items])
        return
    rows = [["NAME", "MODULE", "SM", "DLA", "JETPACK", "TENSORRT", "RUNTIME"]]
    for p in items:
        dla = f"{p.dla_cores} (v{p.dla_generation})" if p.has_dla else "0"
        rows.append([p.name, p.display_name, str(p.sm), dla, _jetpack_ranges(p), ", ".join(p.tensorrt_versions),
                     "yes" if p.runtime_supported else "packaging only"])
    click.echo(_table(rows))


@profiles.command("show", short_help="Show everything one profile says (--json: an object).")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as a JSON object on stdout.")
def show(name: str, as_json: bool) -> None:
    """Show everything one profile says (NAME or alias, e.g. orin-nx-16gb, thor)."""
    from ..profiles import get_profile

    p = get_profile(name)
    if as_json:
        echo_json(_profile_json(p))
        return
    bandwidth = f"{p.memory_bandwidth_gbs:g} GB/s" if p.memory_bandwidth_gbs else "unknown"
    dla = (f"{p.dla_cores} core(s), NVDLA v{p.dla_generation}, up to {p.dla_max_clock_mhz:g} MHz"
           if p.has_dla else "none")
    lines = [
        f"{p.name}: {p.display_name}",
        f"  GPU:          {p.gpu_arch}, compute capability {p.compute_capability} (sm_{p.sm}), "
        f"{p.cuda_cores} CUDA / {p.tensor_cores} tensor cores",
        f"  DLA:          {dla}",
        f"  memory:       {p.memory_gb:g} GB, {bandwidth}",
        f"  precisions:   {', '.join(p.precisions)}",
        f"  families:     {', '.join(p.families) or '-'}   aliases: {', '.join(p.aliases) or '-'}",
        f"  defaults:     precision={p.defaults.precision} dla={p.defaults.dla} "
        f"workspace={p.defaults.workspace_mb} MB",
        f"  runtime:      {'supported' if p.runtime_supported else 'packaging only'}",
        "  JetPack lines:",
    ]
    rows = [["JETPACK", "L4T", "TENSORRT", "CUDA", "CUDNN", "PYTHON", "UBUNTU"]]
    rows += [[j.jetpack, j.l4t, j.tensorrt, j.cuda, j.cudnn, j.python, j.ubuntu] for j in p.jetpacks]
    lines += ["    " + row for row in _table(rows).splitlines()]
    for u in p.tensorrt_upgrades:
        lines.append(f"  TensorRT {u.tensorrt}: installable from JetPack {u.min_jetpack} on "
                     f"(DLA {'yes' if u.dla else 'no'})")
    lines.append("  power modes:  " + (", ".join(
        f"{m.id}={m.name}{'*' if m.default else ''}{' [super]' if m.super_mode else ''}" for m in p.power_modes)
        or "not recorded") + "   (* = default)")
    if p.notes:
        lines.append(f"  notes:        {p.notes}")
    click.echo("\n".join(lines))


@profiles.command("resolve", short_help="Show which profiles a device spec selects.")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Print {term: [profile names]} and the final list as JSON on stdout.")
def resolve(spec: str, as_json: bool) -> None:
    """Show which profiles a device SPEC selects, e.g. 'orin,xavier-nx' or 'agx-orin,thor'."""
    from ..profiles import explain_resolution, resolve_devices

    terms = explain_resolution(spec)
    names = [p.name for p in resolve_devices(spec)]
    if as_json:
        echo_json({"terms": [{"term": t, "profiles": n} for t, n in terms], "profiles": names})
        return
    for term, selected in terms:
        click.echo(f"{term} -> {', '.join(selected)}")
    click.echo(f"= {len(names)} profile(s): {', '.join(names)}")
