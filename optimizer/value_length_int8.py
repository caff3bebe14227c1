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

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.optimize_options import OptimizeOptions
from optimizer.tensor_ranges import ProgressCallback
from optimizer.unbatched import SHAPE_PROBE_REQUESTS
from optimizer.verify_per_request import SAME_SHAPE_WORDS, request_answers, varying_lengths
from quantserve.artifact import Artifact
from quantserve.data import TensorData

# said in the calibrate stage's record, and so in the build's: what was not tried
SEARCH_SKIPPED = (
    "the INT8 search did not run: its candidates are compared on answers stacked across requests, which an output "
    "whose length follows the values cannot be; the default static Q/DQ candidate alone was built and verified "
    "request by request"
)
# what every drift refusal of this route says: the route that builds such a model and is verified as this one was
FP32_ROUTE = (
    "this route builds one INT8 candidate (the INT8 search is skipped for answers whose length follows the values): "
    "build --precision fp32 --unbatched instead (verified per request, served with max_batch_size 0)"
)


def per_request_int8(lengths_vary: bool, calib: TensorData, options: OptimizeOptions) -> DefaultInt8PerRequest | None:
    """The INT8 stage of a model whose answer length follows its values (`lengths_vary`: `lengths_vary_per_request`,
    probed once a run, before fuse, which keeps answer shapes); None for any other model (the INT8 search's)."""
    if not lengths_vary:
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


def refusal_advice(record: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """What a drift refusal of this route adds (`record`: its verification): the FP32 route in its `advice` (said by
    `optimizer.verify.drift_refusal`), and, where requests changed length, `lengths_changed` in its record, which
    keeps `optimize` from advising a clipping --method: outliers clipped do not keep a decoder's lengths."""
    changed = any(v.get("metric") == SAME_SHAPE_WORDS for v in record.get("violations") or [])
    return [*(record.get("advice") or []), FP32_ROUTE], {"lengths_changed": True} if changed else {}


@dataclass(frozen=True)
class TimedRequest:
    """The held-out request (from 0) the speed gate times, and the note its figure carries ("" where none needed)."""

    index: int
    note: str = ""


def timed_request(expected: list[dict[str, np.ndarray]], got: Iterable[dict[str, np.ndarray]]) -> TimedRequest:
    """The first request whose answers (`got`, the build's, as verification ran them: not run again) have the shapes
    of FP32's (`expected`); where none has, request 1, its note saying the figure was timed on answers of different
    lengths."""
    first_differing = ""
    for index, (fp32, build) in enumerate(zip(expected, got, strict=False)):
        differs = _length_words(fp32, build)
        if not differs:
            note = f"timed on held-out request {index + 1}, the first whose answers have FP32's length" if index else ""
            return TimedRequest(index, note)
        first_differing = first_differing or differs
    return TimedRequest(
        0,
        f"timed on answers of different lengths: no held-out request's answers kept FP32's length, and request 1's "
        f"{first_differing}; the figure includes the shorter answer's fewer steps, not INT8's gain alone",
    )


def _length_words(fp32: dict[str, np.ndarray], build: dict[str, np.ndarray]) -> str:
    """Where one request's answers differ in shape: "'y' axis 1 runs 32 in FP32 vs 9 in the build" ("": none do)."""
    for name, expected in fp32.items():
        want, have = np.shape(expected), np.shape(build[name])
        if want != have:
            axis = next((a for a, (w, h) in enumerate(zip(want, have, strict=False)) if w != h), None)
            if axis is None:  # the ranks differ
                return f"'{name}' is {list(want)} in FP32 vs {list(have)} in the build"
            return f"'{name}' axis {axis} runs {want[axis]} in FP32 vs {have[axis]} in the build"
    return ""
