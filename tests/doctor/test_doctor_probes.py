"""The file-format parsers the doctor relies on."""
from __future__ import annotations

from edgeinfer.doctor import probes


def test_dpkg_status_keeps_only_installed():
    text = ("Package: libnvinfer8\nStatus: install ok installed\nVersion: 8.5.2-1+cuda11.4\n\n"
            "Package: libnvinfer7\nStatus: deinstall ok config-files\nVersion: 7.1.3-1+cuda10.2\n\n"
            "Package: gone\nStatus: purge ok not-installed\nVersion: 1.0\n")
    packages = probes.parse_dpkg_status(text)
    assert packages == {"libnvinfer8": "8.5.2-1+cuda11.4"}
    assert probes.tensorrt_package(packages) == ("libnvinfer8", "8.5.2")
    assert probes.upstream_version("1:4.5.4-8ubuntu1") == "4.5.4"


def test_cuda_version_sources(tmp_path):
    cuda = tmp_path / "usr" / "local" / "cuda"
    cuda.mkdir(parents=True)
    (cuda / "version.txt").write_text("CUDA Version 10.2.300\n")  # JetPack 4 layout
    assert probes.cuda_version(tmp_path, {}) == ("10.2.300", str(cuda / "version.txt"))
    (cuda / "version.txt").unlink()
    assert probes.cuda_version(tmp_path, {"cuda-cudart-12-6": "12.6.68-1"}) == ("12.6.68", "dpkg cuda-cudart-12-6")
    assert probes.cuda_version(tmp_path, {}) == (None, "")


def test_cudnn_from_header(tmp_path):
    inc = tmp_path / "usr" / "include" / "aarch64-linux-gnu"
    inc.mkdir(parents=True)
    (inc / "cudnn_version_v8.h").write_text("#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 2\n#define CUDNN_PATCHLEVEL 1\n")
    version, source = probes.cudnn_version(tmp_path, {})
    assert version == "8.2.1" and source.endswith("cudnn_version_v8.h")


def test_version_matching():
    assert probes.version_matches("10.3.0.30", "10.3")
    assert probes.version_matches("8.5.2.2", "8.5.2")
    assert not probes.version_matches("10.7.0", "10.3")
    assert not probes.version_matches("8.5", "8.5.2")


def test_free_space_of_a_dir_not_yet_created(tmp_path):
    info = probes.free_space(tmp_path / "a" / "b")
    assert info["exists"] is False and info["measured_at"] == str(tmp_path) and info["free_bytes"] > 0
