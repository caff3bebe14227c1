"""Targets are plugins: found through the `quantserve.targets` entry-point group, this project's and others'."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from optimizer.export import export_onnx
from optimizer.source import load_source
from optimizer.targets import ENTRY_POINT_GROUP, get_target, target_names
from quantserve.errors import QuantserveError

BUILT_IN = {
    "embedded": "optimizer.embedded",
    "onnxruntime": "optimizer.onnxruntime_target",
    "tensorrt": "optimizer.tensorrt",
}

# A second package's target: the embedded runtime under another name, registered only by its entry point.
PLUGIN_MODULE = """
from optimizer.embedded import EmbeddedTarget


class PluginCpuTarget(EmbeddedTarget):
    name = "plugin_cpu"


TARGET = PluginCpuTarget()
"""


def install_plugin(
    root: Path, monkeypatch: pytest.MonkeyPatch, module: str, entry: str, name: str = "plugin_cpu"
) -> None:
    """Write `module` and an installed distribution's metadata registering `entry` under our group."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{entry.split(':')[0]}.py").write_text(module)  # a module name used once per test: no import cache
    dist_info = root / "quantserve_plugin_cpu-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: quantserve-plugin-cpu\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {entry}\n")
    monkeypatch.syspath_prepend(str(root))


@pytest.mark.parametrize(("name", "module"), BUILT_IN.items())
def test_entry_points_resolve_to_the_target_modules(name: str, module: str) -> None:
    target = get_target(name)
    assert target is importlib.import_module(module).TARGET
    assert target.name == name


def test_fp16_is_a_property_of_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime builds FP16 only with ONNX Runtime's TensorRT accelerator on (session 62: without it, an "fp16"
    build ran FP32 on the CPU)."""
    monkeypatch.delenv("QUANTSERVE_ORT_TENSORRT", raising=False)
    monkeypatch.delenv("QUANTSERVE_ORT_DEVICE", raising=False)
    assert {name: get_target(name).supports_fp16 for name in BUILT_IN} == {
        "embedded": False,
        "onnxruntime": False,
        "tensorrt": True,
    }
    monkeypatch.setenv("QUANTSERVE_ORT_TENSORRT", "1")
    assert get_target("onnxruntime").supports_fp16 is True


def test_unknown_target_lists_the_registered_ones() -> None:
    assert target_names() == ("embedded", "onnxruntime", "tensorrt")
    with pytest.raises(
        QuantserveError, match=r"^unknown target 'openvino'; choose one of: embedded, onnxruntime, tensorrt$"
    ):
        get_target("openvino")


def test_a_target_registered_only_by_an_entry_point_is_found_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_onnx: Path
) -> None:
    install_plugin(tmp_path / "site", monkeypatch, PLUGIN_MODULE, "quantserve_plugin_cpu:TARGET")
    assert "plugin_cpu" in target_names()
    target = get_target("plugin_cpu")
    assert type(target).__module__ == "quantserve_plugin_cpu"
    built = target.build(export_onnx(load_source(tiny_onnx), tmp_path / "work" / "m.onnx"), tmp_path / "out")
    assert built.manifest.target == "plugin_cpu" and built.path.is_file()
    assert target.triton_layout(built).runtime == {"backend": "python"}


def test_a_plugin_that_cannot_be_imported_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "import openvino_is_not_installed\n", "broken_plugin:TARGET")
    with pytest.raises(QuantserveError, match=r"target 'plugin_cpu' \(broken_plugin:TARGET\) cannot be imported"):
        get_target("plugin_cpu")


def test_a_plugin_registered_under_another_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, PLUGIN_MODULE, "misnamed_plugin:TARGET", name="cpu2")
    with pytest.raises(QuantserveError, match=r"target 'cpu2' .* calls itself 'plugin_cpu'"):
        get_target("cpu2")
