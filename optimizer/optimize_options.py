"""What one optimize run is asked to do (`OptimizeOptions`), built once by the CLI or a caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.calibrate import CalibrationSettings
from optimizer.drift_budget import DriftBudget
from optimizer.speed import SpeedSettings
from optimizer.transformer import TransformerSettings


@dataclass(frozen=True)
class OptimizeOptions:
    """Everything one optimize run is asked to do, built once by the CLI (or a caller) and passed down.

    The first fields keep the order of the former positional `optimize(...)` arguments.
    """

    source: str | Path  # .onnx, .pt2 or package.module:factory
    calib_path: str | Path | None  # None: a build that calibrates nothing (fp32, fp16) checked on eval_path's rows
    precision: str
    target: str
    out_dir: str | Path
    method: str = "minmax"
    eval_path: str | Path | None = None  # held-out .npz; default: split from the calibration file (split_holdout)
    name: str | None = None
    opset: int | None = None  # None: PyTorch exports at 17, an .onnx keeps its own opset (at least 13)
    settings: CalibrationSettings | None = None  # default: CalibrationSettings(method=method)
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    on_stage: Callable[[str], None] | None = None  # progress: called with each stage's name
    on_progress: Callable[[int, int, str], None] | None = None  # (done, total, what) inside long stages
    transformer: TransformerSettings | None = None  # --model-type: transformer fusions and INT8 policy
    budget: DriftBudget = field(default_factory=DriftBudget)
    output_kinds: dict[str, str] = field(default_factory=dict)  # --output-kind NAME=kind overrides
    length_input: str | None = None  # --length-input NAME or none; None: inferred (optimizer.token_lengths)
    metric: str | None = None  # --metric package.module:function
    keep_failing: bool = False  # ship even when the drift budget is missed (recorded as such)
    allow_thin_evidence: bool = False  # judge the agreement rates seen on held-out rows too few to show the budget
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    max_search_s: float = 300.0  # --max-search-s: the INT8 search's whole wall-clock budget (SearchSettings)
    state: dict[str, str] | None = None  # --state OUT=IN recurrent state pairs; {}: none; None: detected
    # --unbatched: one request at a time (Triton's max_batch_size 0), each data row along axis 0 one request
    # data[i:i+1]; every stage feeds single rows (TensorData.unbatched), optimizer.unbatched checks the model
    unbatched: bool = False

    def calibration_settings(self) -> CalibrationSettings:
        return self.settings or CalibrationSettings(method=self.method)

    @property
    def judges_thin_evidence(self) -> bool:
        """Held-out rows too few to show the budget are judged anyway (asked, or no budget is enforced)."""
        return self.allow_thin_evidence or self.keep_failing

    def progress(self, stage: str) -> None:
        if self.on_stage is not None:
            self.on_stage(stage)
