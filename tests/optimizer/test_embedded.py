from __future__ import annotations

from pathlib import Path

import optimizer.embedded
from optimizer.embedded import TARGET
from optimizer.export import export_onnx
from optimizer.source import load_source
from optimizer.targets import get_target


def test_registered_as_embedded() -> None:
    assert get_target("embedded") is TARGET
    assert TARGET.name == "embedded"


def test_build_copies_the_onnx_and_lays_out_a_python_backend(tiny_onnx: Path, tmp_path: Path) -> None:
    onnx_artifact = export_onnx(load_source(tiny_onnx), tmp_path / "work" / "m.onnx")
    built = TARGET.build(onnx_artifact, tmp_path / "out")
    assert built.path == tmp_path / "out" / "model.onnx"
    assert built.path.read_bytes() == onnx_artifact.path.read_bytes()
    assert built.manifest.target == "embedded"
    assert built.manifest.stages[-1]["stage"] == "build"
    layout = TARGET.triton_layout(built)
    assert layout.runtime == {"backend": "python"}
    assert layout.instance_kind == "KIND_CPU"
    assert layout.version_files["model.onnx"] == built.path
    assert layout.version_files["model.py"] == Path(optimizer.embedded.__file__).parent / "python_backend" / "model.py"


def test_the_python_backend_reads_the_file_the_target_writes() -> None:
    """model.py is copied alone into the version folder, so it keeps its own copy of the file name."""
    from optimizer.python_backend import model as backend_model
    from quantserve.artifact import MODEL_FILE

    assert backend_model.MODEL_FILE == MODEL_FILE
