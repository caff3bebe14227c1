"""The optimize pipeline: export → fuse → (calibrate INT8) → build for a target → verify → manifest.json.

Everything is written into a hidden sibling folder and renamed into place at the end, so a failed
run leaves no half-written output and an existing output is replaced only after success.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.export import ExportOnnx
from optimizer.fuse import FuseGraph
from optimizer.source import load_source
from optimizer.targets import EngineTarget, get_target
from optimizer.transformer import TransformerSettings
from optimizer.verify import VerifyAgainstReference
from quantserve.artifact import Artifact, Manifest
from quantserve.data import TensorData, check_against, load_npz
from quantserve.errors import QuantserveError

PRECISIONS = ("fp32", "fp16", "int8")
# FP16 is an engine build mode (TensorRT, ONNX Runtime TensorRT accelerator); the CPU runs FP32 ONNX as is.
FP16_TARGETS = ("tensorrt", "onnxruntime")
HOLDOUT_FRACTION = 0.2
MODEL_FILE = "model.onnx"
REFERENCE_FILE = "fp32.onnx"


@dataclass
class OptimizeJob:
    """One optimize run's inputs and settings; `run` does the stages inside the staging folder."""

    source: str | Path
    calib_path: Path
    calib: TensorData
    held_out: TensorData | None
    eval_path: str | Path | None
    precision: str
    engine: EngineTarget
    settings: CalibrationSettings
    name: str | None = None
    opset: int = 17
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    progress: Callable[[str], None] = field(default=lambda stage: None)
    transformer: TransformerSettings | None = None  # --model-type: transformer fusions and INT8 policy

    def run(self, staging: Path, work: Path) -> Artifact:
        """export → fuse → (calibrate) → build → verify; writes fp32.onnx, the model and manifest.json."""
        exported = self._export(work / "exported.onnx")
        calib_set, eval_set, eval_source = split_holdout(self.calib, self.held_out, self.calib_path, self.eval_path)
        self.progress("fuse")
        check_inputs = next(calib_set.batches(8))
        fuse = FuseGraph(check_inputs) if self.transformer is None else self.transformer.fuse_stage(check_inputs)
        fused = fuse(exported, staging / REFERENCE_FILE)
        onnx_model = fused
        if self.precision == "int8":
            self.progress("calibrate")
            calibrate: Callable[[Artifact, Path], Artifact] = CalibrateInt8(calib_set, self.settings)
            if self.transformer is not None:
                calibrate = self.transformer.int8_stage(calib_set, eval_set, self.settings)
            onnx_model = calibrate(fused, work / "int8.onnx")
        elif self.precision == "fp16":
            onnx_model = Artifact(fused.path, Manifest.from_dict({**fused.manifest.to_dict(), "precision": "fp16"}))
        self.progress("build")
        built = self.engine.build(onnx_model, staging)
        self.progress("verify")
        built.manifest.verification = VerifyAgainstReference(fused.path, eval_set, eval_source).measure(onnx_model.path)
        built.manifest.files = {"model": built.path.name, "reference": REFERENCE_FILE}
        built.manifest.save(staging)
        return built

    def _export(self, path: Path) -> Artifact:
        """Export and check both data files against the model's inputs."""
        self.progress("export")
        model = load_source(self.source)
        if self.input_names or self.output_names:
            model = model.renamed(self.input_names or [], self.output_names)
        exported = ExportOnnx(self.opset, self.name)(model, path)
        check_against(self.calib_path, self.calib, exported.manifest.inputs)
        if self.held_out is not None:
            check_against(self.eval_path or "", self.held_out, exported.manifest.inputs)
        return exported


def optimize(
    source: str | Path,
    calib_path: str | Path,
    precision: str,
    target: str,
    out_dir: str | Path,
    method: str = "minmax",
    eval_path: str | Path | None = None,
    name: str | None = None,
    opset: int = 17,
    settings: CalibrationSettings | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    transformer: TransformerSettings | None = None,
) -> Artifact:
    """Run every stage for MODEL and write out_dir/{manifest.json, model.onnx, fp32.onnx}; return the artifact."""
    if precision not in PRECISIONS:
        raise QuantserveError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if precision == "fp16" and target not in FP16_TARGETS:
        raise QuantserveError(f"precision fp16 needs a GPU target ({', '.join(FP16_TARGETS)}), not '{target}'")
    engine = get_target(target)  # validated before any expensive work
    engine.preflight()  # e.g. TensorRT missing: one clear line before export/calibration
    job = OptimizeJob(
        source=source,
        calib_path=Path(calib_path),
        calib=load_npz(calib_path),
        held_out=load_npz(eval_path) if eval_path is not None else None,
        eval_path=eval_path,
        precision=precision,
        engine=engine,
        settings=settings or CalibrationSettings(method=method),
        name=name,
        opset=opset,
        input_names=input_names,
        output_names=output_names,
        transformer=transformer,
    )
    if on_stage is not None:
        job.progress = on_stage
    return run_atomically(job, Path(out_dir))


def run_atomically(job: OptimizeJob, out_dir: Path) -> Artifact:
    """Run `job` in a hidden sibling folder and rename it to `out_dir` only once everything succeeded."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.work-") as work:
            built = job.run(staging, Path(work))
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(out_dir / built.path.name, built.manifest)


def split_holdout(
    calib: TensorData, held_out: TensorData | None, calib_path: Path, eval_path: str | Path | None
) -> tuple[TensorData, TensorData, str]:
    """Calibration and verification sets: `--eval` if given, else the last 20% of the calibration file."""
    if held_out is not None:
        return calib, held_out, str(eval_path)
    count = len(calib)
    if count < 2:
        raise QuantserveError(
            f"{calib_path}: {count} sample is too few to hold out verification data; give more or --eval"
        )
    n_eval = max(1, int(count * HOLDOUT_FRACTION))
    source = f"{calib_path} (last {n_eval} of {count} samples held out)"
    return calib.take(0, count - n_eval), calib.take(count - n_eval, count), source


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished folder to `out_dir`, replacing an existing one only now that all succeeded."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not out_dir.is_dir():
        raise QuantserveError(f"{out_dir}: exists and is not a folder")
    retired = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
    os.rename(out_dir, retired / "previous")
    os.rename(staging, out_dir)
    shutil.rmtree(retired, ignore_errors=True)
