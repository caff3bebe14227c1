"""The calibration and verification sets: `--eval` if given, else rows held out of the calibration file."""

from __future__ import annotations

from pathlib import Path

from quantserve.data import TensorData
from quantserve.errors import QuantserveError

HOLDOUT_FRACTION = 0.2
# calibration rows kept when more are held out to show the budget: ONNX Runtime's min-max and histogram
# calibrators settle on a hundred or so representative rows; verification's agreement rates need 268 for 0.99
MIN_CALIB_ROWS = 128


def split_holdout(
    calib: TensorData,
    held_out: TensorData | None,
    calib_path: Path,
    eval_path: str | Path | None,
    wanted: int = 0,
) -> tuple[TensorData, TensorData, str]:
    """Calibration and verification sets: `--eval` if given, else the last 20% of the calibration file, or up
    to `wanted` rows (what the budget's agreement rates need to be shown) while MIN_CALIB_ROWS stay to calibrate."""
    if held_out is not None:  # absolute: `profile` reads it from wherever it runs
        return calib, held_out, str(Path(str(eval_path)).resolve())
    count = len(calib)
    if count < 2:
        raise QuantserveError(
            f"{calib_path}: {count} sample is too few to hold out verification data; give more or --eval"
        )
    n_eval = max(1, int(count * HOLDOUT_FRACTION), min(count - MIN_CALIB_ROWS, wanted))
    source = f"{Path(calib_path).resolve()} (last {n_eval} of {count} samples held out)"
    return calib.take(0, count - n_eval), calib.take(count - n_eval, count), source
