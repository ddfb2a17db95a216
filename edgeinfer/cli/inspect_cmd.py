"""`edgeinfer inspect`: what a bundle holds, per device (device-side: Python 3.8-clean)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import click

from ._common import echo_json


@click.command("inspect")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the stable summary as JSON on stdout (documented in docs/packaging.md).")
@click.option("--nodes", is_flag=True, help="Also list every node's placement and reason.")
@click.option("--verify", is_flag=True,
              help="Parse and build every ONNX with NVIDIA's parser (TensorRT, else TensorRT-RTX) and check every "
                   "pinned layer; exit 1 if it rejects anything.")
def inspect(bundle_path: str, as_json: bool, nodes: bool, verify: bool) -> None:
    """Show BUNDLE's model, per-device precision, placement, accuracy, artifacts, build commands and engines."""
    from ..bundle import open_bundle, summarize
    from ..fleet.trust import signature_summary

    bundle = open_bundle(bundle_path)
    summary = with_verification(summarize(bundle), bundle.manifest.get("verification"))
    summary["signature"] = signature_summary(bundle)
    if nodes:
        for name in bundle.devices:
            summary["devices"][name]["placement"]["nodes"] = bundle.device(name).placement.get("nodes", [])
    report = None
    if verify:
        from ..engine.nvparse import verify_manifest_in_child

        report = verify_manifest_in_child(bundle.manifest, bundle.root).to_dict()
        summary["verification"] = report
    if as_json:
        echo_json(summary)
    else:
        click.echo(render_text(summary))
        if report is not None:
            click.echo(render_verification(report))
    if report is not None and not report["ok"]:
        click.get_current_context().exit(1)


def with_verification(summary: Dict[str, Any], recorded: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The summary plus the manifest's recorded ``verification`` section (None when the bundle has none)."""
    summary["verification"] = recorded
    return summary


def render_verification(r: Dict[str, Any]) -> str:
    """Text rendering of :meth:`edgeinfer.engine.nvparse.VerifyReport.to_dict`."""
    lines = [f"verification {r['parser']} (ONNX parser {r['onnx_parser_version']}): {'OK' if r['ok'] else 'FAILED'} "
             f"in {r['seconds']:.1f} s; a verification oracle: nothing was built or run on a Jetson"]
    for c in r["checks"]:
        if c["parsed"] and c["built"] is not False:
            built = f", built {c['engine_bytes'] / 1e6:.1f} MB in {c['build_s']:.1f} s" if c["built"] else ""
            state = f"parsed in {c['parse_s']:.2f} s ({c['num_layers']} layers){built}"
        else:
            first = c["errors"][0] if c["errors"] else {"node": "", "op": "", "message": "rejected"}
            state = f"{'REJECTED' if not c['parsed'] else 'BUILD FAILED'}: {first['node'] or 'builder'}: {first['message']}"
        lines.append(f"  {c['artifact']:<34} {'/'.join(c['kinds']):<9} {c['typing']:<6} {state}")
    lines += [f"  problem: {p}" for p in r["problems"]] + [f"  warning: {w}" for w in r["warnings"]]
    if r["not_checked"]:
        lines.append("  not checked by this parser (docs/build.md): "
                     + ", ".join(d["key"] for d in r["not_checked"]))
    return "\n".join(lines)


def render_text(s: Dict[str, Any]) -> str:
    """Human-readable rendering of :func:`edgeinfer.bundle.summarize` output."""
    m = s["model"]
    ins = ", ".join(f"{t['name']} {t['shape']}" for t in m["inputs"])
    outs = ", ".join(f"{t['name']} {t['shape']}" for t in m["outputs"])
    lines = [
        f"bundle    {s['bundle']} (schema {s['schema_version']}, edgeinfer {s['edgeinfer_version']}, created {s['created']})",
        f"model     {m['name']}  {m['task']}/{m['output_layout']}  {ins} -> {outs}",
        f"classes   {_names(list(m['class_names'].values()))}",
        _signature_line(s.get("signature")),
        "artifacts",
    ]
    for a in s["artifacts"]:
        lines.append(f"  {a['path']:<34} {a['size_bytes'] / 1e6:7.2f} MB  {', '.join(a['used_by'])}")
    for name, d in s["devices"].items():
        lines += _device_lines(name, d)
    v = s.get("verification")
    if v and "checked_by" in v:
        lines.append(f"verified  {'OK' if v['ok'] else 'FAILED'} by {v['checked_by']} at {v['checked_at']} "
                     f"({len(v['artifacts'])} parse(s); {len(v['problems'])} problem(s), {len(v['warnings'])} warning(s))"
                     + ("; written with --allow-parser-errors" if v.get("written_despite_errors") else ""))
    return "\n".join(lines)


def _device_lines(name: str, d: Dict[str, Any]) -> List[str]:
    jp, p = d["jetpack"], d["placement"]
    lines = [
        f"device {name} ({d['display_name']})",
        f"  precision    {d['precision']}   JetPack {jp['jetpack']} (L4T {jp['l4t']}, TensorRT {jp['tensorrt']})",
        f"  placement    {str(p['decision']).upper()}: {p['reason']}",
        f"               nodes {p['dla_nodes']} DLA / {p['gpu_nodes']} GPU / {p['folded_nodes']} folded; "
        f"DLA subgraphs {p['dla_subgraphs']}; transitions {p['transitions']}; DLA FLOPs {p['dla_flops_share']:.0%}",
    ]
    for r in p["top_reasons"][:3]:
        lines.append(f"               {r['rule']} x{r['nodes']}: {r['example']}")
    for n in p.get("nodes", []):
        lines.append(f"      {n['device']:<6} {n['op']:<14} {n['name']}: {n['reason']}")
    lines += _accuracy_lines(d["accuracy"])
    if d["calibration"]:
        lines.append(f"  calibration  {_kv(d['calibration'])}")
    target = [k for k, r in d["recipes"].items() if r["tensorrt"] == jp["tensorrt"] and k.startswith(f"jp{jp['jetpack']}-")]
    for key in target or list(d["recipes"])[-1:]:
        lines.append(f"  trtexec      ({key}) {d['recipes'][key]['trtexec']}")
    others = len(d["recipes"]) - len(target or list(d["recipes"])[-1:])
    if others > 0:
        lines.append(f"               + recipes for {others} other JetPack line(s) (see --json)")
    if not d["engines"]:
        lines.append(f"  engines      none yet (on the device: edgeinfer build BUNDLE --device {name})")
    for e in d["engines"]:
        pl = e["placement"]
        actual = _kv(pl["actual"]) if isinstance(pl["actual"], dict) else "not recorded"
        lines.append(f"  engine       {e['path']} ({(e['size_bytes'] or 0) / 1e6:.1f} MB, TensorRT {e['tensorrt_version']})")
        lines.append(f"               placement static: {pl['static']['decision']} ({pl['static']['dla']} DLA / "
                     f"{pl['static']['gpu']} GPU nodes); actual: {actual}; {len(pl['differences'])} node(s) differ")
    return lines


def _accuracy_lines(acc: Dict[str, Any]) -> List[str]:
    if not acc.get("measured"):
        return [f"  accuracy     not measured ({acc.get('note', 'no report')})"]
    figures = []
    ref = (acc.get("precisions") or {}).get("fp32", {})
    for prec, vals in (acc.get("precisions") or {}).items():
        if prec == "fp32":
            continue
        for metric in ("map50", "map50_95"):
            if metric in vals and metric in ref:
                figures.append(f"{metric} {ref[metric]:.3f} -> {prec} {vals[metric]:.3f}")
        if "agreement" in vals:
            agree = vals["agreement"]
            amap = agree.get("map50_95")
            figures.append(f"{prec} vs fp32 box F1 {agree.get('f1') or 0:.3f}, agreement mAP50-95 "
                           + (f"{amap:.3f}" if amap is not None else "-"))
    lines = [f"  accuracy     {'; '.join(figures) or '-'} ({acc.get('images', '?')} images, {acc.get('backend', '?')})"]
    if acc.get("criterion"):
        lines.append(f"               budget: {acc['criterion']}; {len(acc.get('excluded_layers') or [])} layer(s) kept in float")
    return lines


def _signature_line(sig: Any) -> str:
    if not sig or not sig.get("signed"):
        return "signature unsigned" + (f" ({sig['error']})" if sig and sig.get("error") else "")
    if not sig.get("matches_manifest"):
        return f"signature ed25519 by key {sig['key_id']}: DOES NOT MATCH the manifest (changed after signing)"
    trust = {True: "trusted here", False: "INVALID for the trusted key", None: "key not in this machine's trusted keys"}
    return f"signature ed25519 by key {sig['key_id']} ({trust[sig.get('trusted')]})"


def _names(names: List[str]) -> str:
    shown = ", ".join(names[:10]) or "-"
    return shown + (f", ... ({len(names)} in all)" if len(names) > 10 else "")


def _kv(data: Dict[str, Any]) -> str:
    flat = [f"{k}={v}" for k, v in data.items() if not isinstance(v, (dict, list))]
    return ", ".join(flat) or "-"
