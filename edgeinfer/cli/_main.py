"""Entry point: the lazy command group and the one place user errors become clean messages."""
from __future__ import annotations

import importlib
import sys
from typing import Dict, List, Optional, Tuple

import click

from .. import __version__
from ..errors import EdgeInferError

# name -> (module under edgeinfer.cli, attribute, one-line help shown by `edgeinfer --help`)
COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "profiles": ("profiles_cmd", "profiles", "List Jetson device profiles, show one, or resolve a device spec."),
    "package": ("package_cmd", "package", "Package an ONNX or Ultralytics .pt model into a bundle per device."),
    "inspect": ("inspect_cmd", "inspect", "Show what a bundle holds: model, precision, placement, accuracy, engines."),
    "build": ("build_cmd", "build", "Build TensorRT engines for a bundle on the device (needs TensorRT)."),
    "run": ("run_cmd", "run", "Run a bundle over video/camera/stream sources with live stats."),
    "bench": ("bench_cmd", "bench", "Benchmark a bundle: batch sweep, SLA scenarios, plots."),
    "doctor": ("doctor_cmd", "doctor", "Check this machine: JetPack, TensorRT, CUDA, DLA, OpenCV, backends."),
    "demo": ("demo_cmd", "demo", "Run the bundled demo end to end (package, inspect, run)."),
    "uplink": ("uplink_cmd", "uplink", "Inspect the uplink's disk spool."),
    "keygen": ("fleet_cmd", "keygen", "Create an Ed25519 key pair for signing bundles (PREFIX.key, PREFIX.pub)."),
    "sign": ("fleet_cmd", "sign", "Sign a bundle with a private key (writes manifest.sig beside the manifest)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs, 'Lazily Loading Subcommands')."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, short_help = entry
        module = importlib.import_module(f"{__package__}.{module_name}")
        command = getattr(module, attr)
        # click cuts a docstring's first sentence at 45 characters ("..."); the table's line is the short help
        command.short_help = command.short_help or short_help
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table, so listing commands imports none of them.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeinfer")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """edgeinfer: package vision models for NVIDIA Jetson fleets and run them on the device."""
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Optional[List[str]] = None) -> None:
    """Run the CLI; user errors exit 1 with one clear line, usage errors exit 2, Ctrl-C exits 130, SIGTERM 143."""
    try:
        rv = cli.main(args=argv, prog_name="edgeinfer", standalone_mode=False)
    except EdgeInferError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort as exc:
        from ..fleet.signals import EXIT_SIGTERM, Terminated

        if isinstance(exc.__cause__ or exc.__context__, Terminated):  # click wraps KeyboardInterrupt in Abort
            click.echo("terminated (SIGTERM)", err=True)
            sys.exit(EXIT_SIGTERM)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        from ..fleet.signals import EXIT_SIGTERM, Terminated

        terminated = isinstance(exc, Terminated)
        click.echo("terminated (SIGTERM)" if terminated else "interrupted", err=True)
        sys.exit(EXIT_SIGTERM if terminated else 130)
    sys.exit(rv if isinstance(rv, int) else 0)
