"""The calibration and verification sets: `--eval` if given, else rows held out of the calibration file."""

from __future__ import annotations

from pathlib import Path

from quantserve.data import TensorData
from quantserve.errors import QuantserveError

HOLDOUT_FRACTION = 0.2
# calibration rows kept when more are held out to show the budget: ONNX Runtime's min-max and histogram
# calibrators settle on a hundred or so representative rows; verification's agreement rates need 268 for 0.99
MIN_CALIB_ROWS = 128


# why a build that calibrates nothing still needs rows (formatted with its precision): --calib or --eval gives them
NO_ROWS_WHY = (
    "{0} calibrates nothing, but its build is checked against the source, verified and measured on sample rows, "
    "which either file gives"
)


def check_row_sources(precision: str, calib_path: str | Path | None, eval_path: str | Path | None) -> None:
    """Refuse, before any work, a run without the rows it needs: INT8 calibrates on --calib's; FP32 and FP16
    calibrate nothing and take --eval's where --calib is not given (a user with held-out data only was refused)."""
    if calib_path is not None:
        return
    if precision == "int8":
        raise QuantserveError("INT8 needs --calib: calibration rows for its activation ranges")
    if eval_path is None:
        raise QuantserveError(f"{precision} needs --calib or --eval: {NO_ROWS_WHY.format(precision.upper())}")


def no_calib_note(precision: str, held_out: TensorData, measured: bool) -> str:
    """The build's note where no --calib was given: what its --eval rows were used for (`measured`: the FP32
    session's footprint, taken where the target runs the model on this CPU)."""
    uses = "checked (axis 0, NaN), verified against the source and its footprint measured" if measured else ""
    uses = uses or "checked (axis 0, NaN) and verified against the source"
    return f"no --calib: {precision.upper()} calibrates nothing; {uses} on --eval's {len(held_out)} rows"


def split_holdout(
    calib: TensorData | None,
    held_out: TensorData | None,
    calib_path: str | Path | None,
    eval_path: str | Path | None,
    wanted: int = 0,
) -> tuple[TensorData, TensorData, str]:
    """Calibration and verification sets: `--eval` if given, else the last 20% of the calibration file, or up
    to `wanted` rows (what the budget's agreement rates need to be shown) while MIN_CALIB_ROWS stay to calibrate.
    Without a calibration file (a build that calibrates nothing: `check_row_sources`), `--eval`'s rows are both:
    its checks' sample rows and verification's."""
    if held_out is not None:  # absolute: `profile` reads it from wherever it runs
        return calib if calib is not None else held_out, held_out, str(Path(str(eval_path)).resolve())
    if calib is None or calib_path is None:
        raise QuantserveError("--calib or --eval is needed: no rows to check the build on")
    count = len(calib)
    if count < 2:
        raise QuantserveError(
            f"{calib_path}: {count} sample is too few to hold out verification data; give more or --eval"
        )
    n_eval = max(1, int(count * HOLDOUT_FRACTION), min(count - MIN_CALIB_ROWS, wanted))
    source = f"{Path(calib_path).resolve()} (last {n_eval} of {count} samples held out)"
    return calib.take(0, count - n_eval), calib.take(count - n_eval, count), source
