"""The `embedded` target: the ONNX model run by ONNX Runtime inside Triton's Python backend (CPU).

It exists because the Triton server reachable without Docker (the `tritonserver` binary in the
`nvidia-pytriton` wheel) carries only the Python backend; `optimizer/python_backend/model.py` runs
the Q/DQ or FP32 ONNX there.
"""

from __future__ import annotations

from pathlib import Path

from optimizer import onnx_files
from optimizer.targets import TritonLayout
from quantserve.artifact import MODEL_FILE, Artifact


def python_backend_model() -> Path:
    """The Python-backend runner this target ships beside itself (copied into each version folder)."""
    return Path(__file__).parent / "python_backend" / "model.py"


class EmbeddedTarget:
    """Builds nothing beyond a copy: ONNX Runtime loads the ONNX file itself at serve time."""

    name = "embedded"
    supports_fp16 = False  # ONNX Runtime on the CPU; FP16 is a GPU precision here

    def preflight(self) -> None:
        """Nothing to check: ONNX Runtime is a dependency of the project."""

    def check_deploy(self, artifact: Artifact, max_batch: int) -> None:
        """Any batch size: the ONNX model has a dynamic batch axis."""

    def build(self, onnx: Artifact, out_dir: Path) -> Artifact:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / MODEL_FILE
        if Path(onnx.path).resolve() != path.resolve():
            onnx_files.copy(onnx.path, path)
        record = {"stage": "build", "target": self.name, "engine": "onnxruntime (CPU, Triton python backend)"}
        return onnx.with_stage(path, record, target=self.name)

    def triton_layout(self, artifact: Artifact) -> TritonLayout:
        return TritonLayout(
            runtime={"backend": "python"},
            version_files={
                MODEL_FILE: Path(artifact.path),
                "model.py": python_backend_model(),
                **onnx_files.external_files(artifact.path),  # a model of 2 GiB or more: its weights file
            },
            instance_kind="KIND_CPU",
        )


TARGET = EmbeddedTarget()
