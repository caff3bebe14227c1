"""INT8 of an --unbatched model whose answer length follows its values (a table/OCR decoder: y [1, T, 8], T its steps
to EOS), built from the default calibration alone.

Such a model's answers cannot be stacked across requests, and the INT8 search (`optimizer.int8_search`) runs its
reference, its candidates' probes and their drift on stacked answers: it stopped at "output 'y' cannot be joined along
the batch axis: [1, 5, 8], [1, 6, 8]". So this route skips the search: the default static Q/DQ scheme (the
calibration flags as given) is the one candidate, verified request by request as FP32 builds of such models are
(`optimizer.verify_per_request`: the share of requests of FP32's length against --min-sequence-agreement, the
cosine of the others against the cosine budget) and timed a request whole as any --unbatched build.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.optimize_options import OptimizeOptions
from optimizer.tensor_ranges import ProgressCallback
from optimizer.unbatched import SHAPE_PROBE_REQUESTS
from optimizer.verify_per_request import request_answers, varying_lengths
from quantserve.artifact import Artifact
from quantserve.data import TensorData

# said in the calibrate stage's record, and so in the build's: what was not tried
SEARCH_SKIPPED = (
    "the INT8 search did not run: its candidates are compared on answers stacked across requests, which an output "
    "whose length follows the values cannot be; the default static Q/DQ candidate alone was built and verified "
    "request by request"
)


def per_request_int8(
    fused: Path, held_out: TensorData, calib: TensorData, options: OptimizeOptions
) -> DefaultInt8PerRequest | None:
    """The INT8 stage of a model at `fused` whose answer length follows its values; None for any other model (the
    INT8 search's)."""
    if not lengths_vary_per_request(fused, held_out, options):
        return None
    return DefaultInt8PerRequest(calib, options.calibration_settings(), options.on_progress)


def lengths_vary_per_request(model: Path, data: TensorData, options: OptimizeOptions) -> bool:
    """Whether an INT8 build's `model` answers the first requests of `data`, run one at a time, with lengths past
    axis 0 that change (only an --unbatched build can hold such a model: the batched checks refuse it)."""
    if not options.unbatched or options.precision != "int8" or len(data) == 0:
        return False
    probe = data.take(0, min(len(data), SHAPE_PROBE_REQUESTS))
    return bool(varying_lengths(request_answers(model, probe)))


class DefaultInt8PerRequest:
    """The INT8 stage of a model whose answer length follows its values: the default calibration (`CalibrateInt8`
    with the run's settings), its record saying the search was skipped."""

    def __init__(
        self, calib: TensorData, settings: CalibrationSettings, on_progress: ProgressCallback | None = None
    ) -> None:
        self.calibrate = CalibrateInt8(calib, settings, on_progress=on_progress)

    def __call__(self, fused: Artifact, out_path: Path) -> Artifact:
        built = self.calibrate(fused, out_path)
        stages = [dict(stage) for stage in built.manifest.stages]
        stages[-1] = {**stages[-1], "scheme": "static_qdq", "search": SEARCH_SKIPPED}
        built.manifest.stages = stages
        return built
