"""`import edgeinfer` stays light, and every `edgeinfer <cmd> --help` works with only the core installed.

Both run in fresh subprocesses: an in-process check would see modules other tests imported.
"Only the core installed" is emulated by a meta-path hook that makes every optional/heavy
package unimportable, exactly as on a machine where `pip install edgeinfer` pulled no extras.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap

import pytest

from edgeinfer.cli._main import COMMANDS

HEAVY = ("cv2", "torch", "onnxruntime", "onnx", "onnxslim", "ultralytics", "tensorrt", "pycuda", "cuda",
         "cupy", "paho", "jtop", "matplotlib")

_BLOCKER = textwrap.dedent(
    """
    import sys, importlib.abc
    HEAVY = %r
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in HEAVY:
                raise ImportError('blocked for test: ' + name)
            return None
    sys.meta_path.insert(0, _Block())
    """
) % (HEAVY,)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_edgeinfer_pulls_in_no_heavy_module():
    code = (
        "import sys, json, edgeinfer, edgeinfer.cli, edgeinfer.errors, edgeinfer._deps\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_works_with_core_only(command):
    code = _BLOCKER + textwrap.dedent(
        f"""
        import sys, json
        from edgeinfer.cli import main
        try:
            main([{command!r}, '--help'])
        except SystemExit as exc:
            code = exc.code
        print('EXIT', code)
        print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
        """
    )
    proc = _run(code)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stderr
    assert "EXIT 0" in lines, proc.stdout + proc.stderr
    assert "Usage:" in proc.stdout
    assert json.loads(lines[-1]) == []


def test_top_level_help_lists_every_command(run_cli):
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_unknown_command_is_a_usage_error(run_cli):
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "No such command" in proc.stderr


def test_missing_dependency_message_names_the_install_command():
    code = _BLOCKER + textwrap.dedent(
        """
        from edgeinfer._deps import require
        from edgeinfer.errors import MissingDependencyError
        try:
            require('onnxruntime')
        except MissingDependencyError as exc:
            print(str(exc))
        """
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'edgeinfer[runtime]'" in proc.stdout
    assert "onnxruntime" in proc.stdout


def test_missing_tensorrt_on_a_jetson_points_to_jetpack(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n")
    code = _BLOCKER + textwrap.dedent(
        f"""
        import os
        os.environ['EDGEINFER_TEGRA_RELEASE'] = {str(release)!r}
        from edgeinfer._deps import install_hint
        print(install_hint('tensorrt'))
        """
    )
    proc = _run(code)
    assert "JetPack" in proc.stdout and "pip" not in proc.stdout.split("JetPack")[0]


def test_reading_a_bundle_does_not_load_host_only_ingestion():
    # Device side (Python 3.8) imports edgeinfer.model.info through the bundle reader; the
    # ingestion modules are host-only (3.10+) and must stay unloaded.
    proc = _run("import sys, edgeinfer.bundle, edgeinfer.runtime.model, edgeinfer.model\n"
                "print(sorted(m for m in sys.modules if m.startswith('edgeinfer.model.')))")
    assert proc.returncode == 0, proc.stderr
    loaded = set(ast.literal_eval(proc.stdout.strip().splitlines()[-1]))
    assert loaded <= {'edgeinfer.model.info', 'edgeinfer.model.layout'}, loaded
