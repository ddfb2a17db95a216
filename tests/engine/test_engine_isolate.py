"""Native toolchain work in a child process (engine/isolate.py): results and edgeinfer errors come back as they
are, and a child killed by a signal (as NVIDIA's native parser can be) is a clean BuildError in the parent."""
from __future__ import annotations

import signal

import pytest
from engine_helpers import crash_with_signal, raise_config_error

from edgeinfer.engine.isolate import call_in_child
from edgeinfer.errors import BuildError, ConfigError


def test_the_result_comes_back():
    assert call_in_child(sorted, [3, 1, 2], what="sorting") == [1, 2, 3]


def test_it_works_from_a_script_read_on_stdin(tmp_path):
    """`python -` (the docs test runs blocks so): multiprocessing's spawn failed there, re-importing <stdin>."""
    import subprocess
    import sys

    script = "from edgeinfer.engine.isolate import call_in_child\nprint(call_in_child(max, 3, 9, what='max'))\n"
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "9", proc.stderr


def test_an_edgeinfer_error_comes_back_as_the_same_class_with_its_hint():
    with pytest.raises(ConfigError) as info:
        call_in_child(raise_config_error, "bad knob", what="a check")
    assert info.value.message == "bad knob" and info.value.hint == "the hint travels too"


@pytest.mark.parametrize("signum,name", [(signal.SIGSEGV, "SIGSEGV"), (signal.SIGABRT, "SIGABRT")])
def test_a_crash_in_the_child_is_a_build_error_naming_the_signal(signum, name):
    with pytest.raises(BuildError) as info:
        call_in_child(crash_with_signal, int(signum), what="NVIDIA's ONNX parser")
    assert info.value.message.startswith(
        f"NVIDIA's ONNX parser crashed: the child process running it was killed by signal {int(signum)} ({name})")
    assert "--no-verify" in info.value.hint
