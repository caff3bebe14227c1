"""NaN in an input as a value ("missing"), accepted where the FP32 model answers it finitely, and recorded.

atspm-detector's LightGBM export (ai.onnx.ml tree ensembles, session 54) takes NaN as "missing": 1763 NaN in 68 of
its real rows, each answered finitely by ONNX Runtime in process and by Triton alike, while 0 in its place moved a
score by up to 1.016. Every command refused the data ("inputs must be finite"). That refusal stays for a model that
does not take NaN: NaN reached calibration as a NaN range and optimize failed obscurely later. optimize decides it
here, on the exported graph: the data's rows that carry NaN are run in FP32, and an input whose NaN rows all come
back finite is recorded in the build's manifest (`NAN_INPUTS`) with the ops that read it; `deploy` writes it into the
served config (`serving.nan_parameter`), and the commands that send data accept NaN in those inputs alone. INT8 is
refused for such data: its calibration would take a range of NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.batch_axis import answered_values, checking_session
from optimizer.verify import verify_batch_size
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from quantserve.finite_data import NanAccepted, NonFinite, non_finite_rows

NAN_INPUTS = "nan_inputs"  # manifest.extra: {input: {"values": n, "rows": n, "read_by": [op types]}}
# ops that take NaN as a value: a tree's "missing" branch (missing_value_tracks_true), a test for it, a fill of it
NAN_READERS = frozenset({"TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble", "IsNaN", "Imputer"})


def accepted_nan_inputs(
    model_path: Path, files: Sequence[tuple[str | Path, TensorData]], source: str
) -> dict[str, dict[str, Any]]:
    """{input: its record} for every input that carries NaN in the data `files` and whose NaN rows the FP32 model at
    `model_path` answers without a NaN in any output; a NaN answered is a QuantserveError naming the file, the input,
    the output and the row. {} where no input carries NaN."""
    record: dict[str, dict[str, Any]] = {}
    for path, data in files:
        found = nan_in(data)
        if found:
            _check_answers(model_path, path, data, found, source)
        for name, nan in found.items():
            seen = record.setdefault(name, {"values": 0, "rows": 0})
            seen["values"] += nan.count
            seen["rows"] += len(nan.rows)
    readers = nan_readers(model_path, record) if record else {}
    return {name: {**seen, "read_by": readers.get(name, [])} for name, seen in sorted(record.items())}


def nan_in(data: TensorData) -> dict[str, NonFinite]:
    """The inputs of `data` that hold NaN, with their counts and rows."""
    found = {name: non_finite_rows(array, np.isnan) for name, array in data.arrays.items()}
    return {name: nan for name, nan in found.items() if nan.count}


def _check_answers(
    model_path: Path, path: str | Path, data: TensorData, found: Mapping[str, NonFinite], source: str
) -> None:
    """Run the FP32 model on the rows of `data` that carry NaN; the first output answering NaN is refused."""
    rows = np.unique(np.concatenate([nan.rows for nan in found.values()]))
    carrying = data.take_rows(rows)
    session = checking_session(model_path, source)
    names = [output.name for output in session.get_outputs()]
    done = 0
    for feeds in carrying.batches(verify_batch_size(model_path, carrying)):
        fed = 1 if carrying.requests.whole else len(next(iter(feeds.values())))
        for name, values in zip(names, answered_values(session, feeds, source), strict=True):
            at = _first_nan_row(values, fed)
            if at is not None:
                raise QuantserveError(_answered_nan(path, found, name, int(rows[done + at])))
        done += fed


def _first_nan_row(values: Any, fed: int) -> int | None:
    """The first of `fed` rows on which a float output holds NaN (0 where its rows are not the rows fed); None
    where it holds none."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating) or not np.isnan(array).any():
        return None
    if array.ndim == 0 or len(array) != fed:
        return 0
    return int(np.argmax(np.isnan(array.reshape(fed, -1)).any(axis=1)))


def _answered_nan(path: str | Path, found: Mapping[str, NonFinite], output: str, row: int) -> str:
    name = next((name for name, nan in found.items() if row in nan.rows), next(iter(found)))
    nan = found[name]
    return (
        f"{path}: input '{name}' has {nan.count} NaN value(s), in {len(nan.rows)} row(s) (first: row "
        f"{int(nan.rows[0])}), and the FP32 model answers NaN for them (output '{output}', row {row}): optimize "
        "accepts NaN in an input only where the FP32 model answers it finitely (a model that takes NaN as a "
        "missing value, as tree ensembles do); inputs must be finite"
    )


def nan_readers(model_path: Path, names: Iterable[str]) -> dict[str, list[str]]:
    """{input: the ops of NAN_READERS downstream of it}, read off the graph (its main graph, without weights): what
    takes the NaN as a value, said beside the FP32 answers that decided it."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return {name: sorted(_downstream_ops(graph, name) & NAN_READERS) for name in names}


def _downstream_ops(graph: onnx.GraphProto, name: str) -> set[str]:
    reached, ops = {name}, set()
    for node in graph.node:  # nodes are stored in topological order
        if reached.intersection(node.input):
            ops.add(node.op_type)
            reached.update(node.output)
    return ops


def nan_input_names(record: object) -> frozenset[str]:
    """The input names a manifest's `NAN_INPUTS` record holds ({name: …} or a list of names); none where absent or
    garbled."""
    if isinstance(record, Mapping | list | tuple) and all(isinstance(name, str) for name in record):
        return frozenset(record)
    return frozenset()


def build_nan_accepted(record: object, build: str | Path) -> NanAccepted:
    """The NaN a build at `build` accepts, for `check_against` (bench --user, tune: they read the manifest)."""
    return NanAccepted(nan_input_names(record), f"the build at {build}")


def nan_notes(record: object) -> list[str]:
    """optimize's note per input whose NaN it accepted: the atspm trees shipped without a word on the 5313 NaN they
    took, and a user could not tell the build would take NaN where the served commands refuse it for other builds."""
    if not isinstance(record, Mapping):
        return []
    notes = []
    for name, seen in record.items():
        read_by = f" (read by {', '.join(seen.get('read_by') or [])})" if seen.get("read_by") else ""
        notes.append(
            f"input '{name}' carries NaN in {seen.get('rows', 0)} row(s) of the data ({seen.get('values', 0)} "
            f"value(s)), which the FP32 model answers finitely{read_by}: taken as missing values; deploy records "
            "it, and infer, evaluate and loadtest accept NaN in this input (an infinity never)"
        )
    return notes


def int8_nan_refusal(record: Mapping[str, Mapping[str, Any]]) -> str:
    """The line refusing INT8 of data carrying NaN: calibration would take a NaN range (a tree-only graph is refused
    before this, by its op types: nothing to quantize)."""
    name, seen = next(iter(record.items()))
    read_by = f", read by {', '.join(seen.get('read_by') or [])}" if seen.get("read_by") else ""
    return (
        f"input '{name}' carries NaN (missing values) in {seen['rows']} row(s) of the data, which the FP32 model "
        f"answers finitely{read_by}; INT8 calibration cannot take a range of NaN: build it with --precision fp32, "
        "which accepts it"
    )
