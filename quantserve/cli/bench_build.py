"""The FP32 and INT8 builds `quantserve bench` times: optimize's options for a built-in model, one build (reused
where its folder holds a complete one of the same model), and the prepared model with its builds.

Both bench sources use them: the built-in models (quantserve.cli.bench) and a user's own model
(quantserve.cli.bench_user). Every build keeps a drift miss (keep_failing) and skips optimize's own
timing: the bench measures speed itself, and records whether the build held its budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Say = Callable[[str], None]


@dataclass
class PreparedModel:
    """A model with its builds: the eager module, the two ONNX files, and where everything lies."""

    model: Any  # examples.bench_models.BenchModel, or bench_user.UserBenchModel
    builds: dict[str, Path]  # "fp32"/"int8" -> optimize build folder
    records: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # a user's model: what was given (bench_user.source_record)


def builtin_options(model: Any, precision: str, out: Path) -> Any:
    """optimize's options for a built-in bench model (examples.bench_models.BenchModel)."""
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings
    from optimizer.transformer import TransformerSettings

    transformer = TransformerSettings(model.model_type, *model.encoder_shape) if model.model_type else None
    return OptimizeOptions(
        model.program, model.path("calib.npz"), precision, "embedded", out,
        eval_path=model.path("heldout.npz"), name=f"{model.name}_{precision}",
        input_names=list(model.input_names), output_names=list(model.output_names), transformer=transformer,
        keep_failing=True,  # the bench measures speed: a drift over budget is recorded, not refused
        speed=SpeedSettings(enabled=False),  # the bench times INT8 against FP32 itself
    )  # fmt: skip


def build(name: str, options: Any, fresh: bool, say: Say) -> tuple[Path, dict[str, Any]]:
    """Optimize with `options` (reusing a complete build in its folder unless `fresh`); the build's record."""
    from optimizer.pipeline import optimize
    from quantserve.artifact import Manifest

    out = Path(options.out_dir)
    reused = not fresh and (out / "manifest.json").is_file()
    if not reused:
        say(f"{name}: optimize {options.precision} → {out}")
        optimize(options)
    manifest = Manifest.load(out)
    verification = manifest.verification or {}
    calibrate = next((s for s in manifest.stages if s.get("stage") == "calibrate"), {})
    record = {"path": str(out), "drift_holds": verification.get("holds"), "reused": reused}
    record.update({k: calibrate[k] for k in ("scheme", "kept_fp32", "int8_mac_share") if k in calibrate})
    violations = verification.get("violations") or []
    if violations:  # the first miss, as optimize's refusal would have named it
        record["drift_line"] = violations[0].get("line", "")
    return out, record
