"""A fixed batch of 1 made dynamic where the graph allows it, proven by running it.

Many published ONNX files fix the batch at 1 (exporters' default for a traced example input: a
YOLO export, a captcha OCR model inside a PyPI package). Triton batches requests only along a
dynamic axis 0, so such a file used to be refused with "re-export it" — which the user of a
third-party file cannot do. Here axis 0 of the inputs (and of the outputs fixed at 1) is named
`batch`, and each `Reshape` whose constant target starts with a literal 1 copies axis 0 instead
(target 0: "copy this dim from the input", ONNX's Reshape with allowzero unset), and each `Resize` to a
constant `sizes` [1, C, H, W] takes the equal `scales` (`optimizer.batch_resize`). Whether that is
faithful is not guessed: two rows of synthetic input are run at once and one at a time, and every
output must come back with 2 rows equal to the two single runs (and, where a Resize was given scales,
one row equal to the original's). When it does not (the batch is
folded into another axis, an output is time-major, a shape is baked in elsewhere), the model is
refused with the shapes that show it. No library does this: ONNX Runtime's
`make_dynamic_shape_fixed` goes the other way, and onnx's `update_inputs_outputs_dims` renames
dims without touching the graph or checking it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from optimizer import onnx_files
from optimizer.batch_advice import UNBATCHED_ROUTE, constants, resize_sizes_advice, unbatched_reason
from optimizer.batch_resize import ScalesForSizes, drop_unread_sizes, scales_for_sizes, undo_scales
from optimizer.frame_axis import does_not_run
from optimizer.ort_failure import cannot_load, failing_node, ort_reason
from quantserve.errors import QuantserveError

BATCH = "batch"
# A row alone may differ from itself in a batch by kernel numerics (ORT picks GEMM blocking by batch size): magika's
# file-type probabilities moved by up to 1.5 % of their spread over the rows; silero-vad's sequence model, its time
# steps fed as rows, by 174 %. Rows count as dependent where a row moves by more than this share of the spread.
DEPENDENT_SHARE = 0.1
OTHER_DYNAMIC_DIM = 32  # the size given to the other dynamic axes (sequence, width) in the proof run
ROWS = 2


@dataclass(frozen=True)
class FreedBatch:
    """What was changed to make the batch axis dynamic, for the export stage's record."""

    inputs: list[str]
    reshapes: list[str]
    resizes: list[str]

    def to_dict(self) -> dict[str, object]:
        record: dict[str, object] = {"was": 1, "inputs": self.inputs, "reshape_targets_rewritten": self.reshapes}
        if self.resizes:  # and one row answers as the published file does
            record["resize_sizes_given_as_scales"] = self.resizes
        record["proof"] = f"{ROWS} rows at once equal {ROWS} single-row runs on every output"
        return record


def fixed_unit_batch(model: onnx.ModelProto) -> list[str]:
    """The graph inputs whose axis 0 is fixed at 1 (every input, or none: a mix is not a batch of 1)."""
    inputs = graph_inputs(model)
    fixed = [v.name for v in inputs if _dims(v) and _dims(v)[0].HasField("dim_value") and _dims(v)[0].dim_value == 1]
    return fixed if inputs and len(fixed) == len(inputs) else []


def free_unit_batch(path: Path, model: onnx.ModelProto) -> tuple[onnx.ModelProto, FreedBatch | None]:
    """`model` with its fixed batch of 1 made dynamic (in place) and proven, or unchanged when it has no such axis.

    Raises QuantserveError naming the input, the output and the shapes when the graph depends on the batch of 1.
    """
    inputs = fixed_unit_batch(model)
    if not inputs:
        return model, None
    resizes = scales_for_sizes(model)  # while ONNX infers the shapes of a batch of 1
    for value in [*graph_inputs(model), *model.graph.output]:  # in place: a refused model is not used again
        dims = _dims(value)
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = BATCH  # setting the oneof field clears dim_value
    reshapes = _copy_batch_in_reshapes(model)
    del model.graph.value_info[:]  # shapes inferred for a batch of 1; inferred again downstream
    problem, failing = rows_mismatch(model, path)
    if resizes.nodes and (problem or not _one_row_as_before(model, path)):
        undo_scales(model, resizes)  # refused as the graph is, with the advice for its `sizes`
        resizes = ScalesForSizes([], [])
        problem, failing = rows_mismatch(model, path)
    if problem:
        advice = resize_sizes_advice(model, failing) or (
            f"re-export it with a dynamic batch axis (dim_param) so Triton can batch requests{UNBATCHED_ROUTE}"
        )
        raise QuantserveError(
            f"{path}: input '{inputs[0]}' has a fixed batch axis (1) and the graph depends on it ({problem}); {advice}"
        )
    drop_unread_sizes(model, resizes)
    return model, FreedBatch(inputs, reshapes, resizes.names)


def _copy_batch_in_reshapes(model: onnx.ModelProto) -> list[str]:
    """Reshape targets (initializers or Constant nodes) starting with 1 now start with 0: copy axis 0."""
    graph = model.graph
    known = constants(model)
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    rewritten: list[str] = []
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or _attr(node, "allowzero"):
            continue
        target = node.input[1]
        tensor = known.get(target)
        if tensor is None:
            continue
        shape = numpy_helper.to_array(tensor)
        if shape.ndim != 1 or shape.size < 2 or shape[0] != 1:
            continue
        new = shape.copy()
        new[0] = 0
        if readers.get(target, 0) > 1:  # shared with another reader: give this Reshape its own copy
            name = f"{target}__batch_{len(rewritten)}"
            graph.initializer.append(numpy_helper.from_array(new, name))
            node.input[1] = name
        else:
            tensor.CopyFrom(numpy_helper.from_array(new, tensor.name))
        rewritten.append(node.name or target)
    return rewritten


def rows_mismatch(model: onnx.ModelProto, path: Path) -> tuple[str, str]:
    """('', '') when ROWS synthetic rows run at once give, on every output, the single-row runs stacked; else why
    not, and the name of the node ORT failed to run ('' if none)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Quiet: ORT warns that outputs differ from the declared shapes (what is tested), and its error log of a node
    # that fails (a Resize's multi-line "'Linear' mode only supports:") went to stderr beside our line, which says it
    options.log_severity_level = 4
    try:
        session = onnx_files.inference_session(model, path, options)  # `model` is the file at `path`, changed
    except Exception as exc:  # the freed batch breaks the graph's shapes, or ORT cannot load the file at all
        _require_loadable(path)
        return f"{ROWS} rows do not load: {ort_reason(exc)}", ""
    try:
        feeds = _synthetic_rows(model)
        together = session.run(None, feeds)
        alone = [session.run(None, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(ROWS)]
    except Exception as exc:  # ORT's own errors for a shape the graph cannot take
        node = failing_node(exc)
        return f"{ROWS} rows do not run: {ort_reason(exc)}", node[1] if node else ""
    return _rows_differ(session, together, alone), ""


def _rows_differ(session: Any, together: list[np.ndarray], alone: list[list[np.ndarray]]) -> str:
    """'' when every output of the rows run `together` is the rows run `alone` stacked; else which is not."""
    for index, output in enumerate(session.get_outputs()):
        got, singles = together[index], [run[index] for run in alone]
        if got.ndim == 0 or got.shape[0] != ROWS or any(s.shape != (1, *got.shape[1:]) for s in singles):
            one = list(singles[0].shape)
            return f"with {ROWS} rows output '{output.name}' has shape {list(got.shape)}, with 1 row {one}"
        if not _same(got, np.concatenate(singles)):
            return f"output '{output.name}' of {ROWS} rows at once differs from the rows run one at a time"
    return ""


def _one_row_as_before(model: onnx.ModelProto, path: Path) -> bool:
    """Whether one synthetic row gives every output of `model` as the file at `path` (the model as published)
    gives it; False where the file does not run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    feeds = {name: rows[:1] for name, rows in _synthetic_rows(model).items()}
    try:
        before = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, feeds)
        after = onnx_files.inference_session(model, path, options).run(None, feeds)
    except Exception:  # ORT's own error types: judged, and said, by the refusal as the graph is
        return False
    return all(a.shape == b.shape and _same(a, b) for a, b in zip(after, before, strict=True))


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    """Ids equal, floats within the tolerance of another batch size's kernels."""
    if got.dtype.kind in "biu":
        return bool(np.array_equal(got, want))
    scale = float(np.nanmax(np.abs(want))) if want.size else 0.0
    return bool(np.allclose(got, want, rtol=1e-3, atol=1e-4 * max(1.0, scale), equal_nan=True))


def checking_session(path: Path, model: str | Path) -> Any:
    """One quiet ONNX Runtime CPU session of the exported model at `path`, shared by the row checks below (a large
    model was loaded three times); the first time the user's model meets ONNX Runtime, so a model it cannot load
    is a QuantserveError naming `model` (a custom op, an op its build lacks). Quiet: a run that fails is said in our
    one line, not also as ORT's error log."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's Fail/InvalidGraph/NotImplemented
        raise cannot_load(model, exc, path) from exc


def answered_shapes(session: Any, feeds: dict[str, np.ndarray], model: str | Path) -> list[list[int]]:
    """Each output's shape as `session` answers `feeds`; a model that does not run at the data's shapes is a
    QuantserveError naming `model`."""
    return [list(np.shape(value)) for value in answered_values(session, feeds, model)]


def answered_values(session: Any, feeds: dict[str, np.ndarray], model: str | Path) -> list[Any]:
    """Each output as `session` answers `feeds` (`answered_shapes`)."""
    try:
        return list(session.run(None, feeds))
    except Exception as exc:  # ORT's own error types: the model does not run at the data's shapes
        raise does_not_run(session, feeds, model, exc) from exc


def unbatched_output(
    session: Any,
    feeds: dict[str, np.ndarray],
    model: str | Path,
    advice: str = "",
    answered: list[list[int]] | None = None,
) -> str:
    """'' when every output of `session`'s model holds one row per row of `feeds` along axis 0, for all of
    them and for the first alone; else which does not, its shape and what to do (`unbatched_reason`, `advice`
    said before its route). `answered`: the outputs' shapes for `feeds` where the caller ran them already.

    An output whose other axes change with the number of rows is a QuantserveError naming `model`, and so is a
    model that does not run at the data's shapes.
    """
    names = [output.name for output in session.get_outputs()]
    shapes = []
    for batch in (feeds, {name: array[:1] for name, array in feeds.items()}):
        rows = len(next(iter(batch.values())))
        ran = answered if answered is not None and batch is feeds else answered_shapes(session, batch, model)
        shapes.append(ran)
        for name, shape in zip(names, shapes[-1], strict=True):
            if not shape or shape[0] != rows:
                return unbatched_reason(name, shape, rows, advice)
    _refuse_rows_in_other_axes(model, names, shapes, len(next(iter(feeds.values()))))
    return ""


def dependent_rows(session: Any, feeds: dict[str, np.ndarray]) -> str:
    """'' when every row of `feeds` run alone answers as it does run together with the others; else which output
    of which row moved, and by how much. A model whose axis 0 is not a batch of independent samples (a recurrent
    model fed its time steps as rows, an op that pools over axis 0) answers a request by what Triton's dynamic
    batching put beside it: silero-vad's sequence model, its FP32 rows alone agreeing with their batch on 0.48 of
    its frames, was refused only after calibration, as an INT8 drift. A row must move beyond `rows_mismatch`'s float
    tolerance and by more than DEPENDENT_SHARE of the output's spread over the rows."""
    rows = len(next(iter(feeds.values())))
    if rows < 2:
        return ""
    names = [output.name for output in session.get_outputs()]
    together = session.run(None, feeds)
    # ids beside float outputs are judged through them: an argmax near a tie may flip by the kernels' numerics
    floats = any(np.asarray(t).dtype.kind in "fc" for t in together)
    for row in range(rows):
        alone = session.run(None, {name: array[row : row + 1] for name, array in feeds.items()})
        for name, batched, single in zip(names, together, alone, strict=True):
            got, want = np.asarray(single), np.asarray(batched)[row : row + 1]
            if got.dtype.kind not in "fc" and floats and got.shape == want.shape:
                continue
            if got.shape != want.shape or got.dtype.kind not in "fc":
                if got.shape != want.shape or not np.array_equal(got, want):
                    return f"output '{name}' of row {row} run alone differs from the same row among {rows} rows"
                continue
            scale = float(np.nanmax(np.abs(want))) if want.size else 0.0
            if np.allclose(got, want, rtol=1e-3, atol=1e-4 * max(1.0, scale), equal_nan=True):
                continue
            moved = float(np.nanmax(np.abs(got.astype(np.float64) - want)))
            spread = float(np.nanstd(np.asarray(batched, dtype=np.float64)))
            if moved > DEPENDENT_SHARE * spread:  # beyond the numerical noise of another batch size's kernels
                return (
                    f"output '{name}' of row {row} run alone differs from the same row among {rows} rows "
                    f"(by up to {moved:.3g})"
                )
    return ""


def sizes_fixed_in_graph(session: Any, feeds: dict[str, np.ndarray]) -> list[str]:
    """A note per named dynamic axis (after the batch) the model does not run with at twice the data's size (the
    first row repeated along it, so every divisibility the size had holds): the TorchScript exporter baked a
    transformer's T=30 into its attention's Reshape, and the model shipped declaring ['batch', 'time', 8] failed at
    any other length. Doubling keeps a convolution stack's multiples of 32 that a size-1 probe would break."""
    places: dict[str, list[tuple[str, int]]] = {}
    for spec in session.get_inputs():
        for axis, dim in enumerate(spec.shape):
            if axis >= 1 and isinstance(dim, str) and spec.name in feeds and np.ndim(feeds[spec.name]) > axis:
                places.setdefault(dim, []).append((spec.name, axis))
    first = {name: array[:1] for name, array in feeds.items()}
    notes = []
    for dim, where in places.items():
        grown = dict(first)
        for name, axis in where:
            grown[name] = np.concatenate([grown[name], grown[name]], axis=axis)
        name, axis = where[0]
        size = int(np.shape(first[name])[axis])
        if size == 0:
            continue
        try:
            session.run(None, grown)
        except Exception as exc:  # ORT's own error types: the graph cannot take the other size
            reason = ort_reason(exc)
            notes.append(
                f"input '{name}' axis {axis} ('{dim}') is declared dynamic, but the model does not run at {2 * size} "
                f"where it runs at {size} ({reason}); requests at other sizes may fail: where that is not the "
                "model's own limit, re-export it with that axis dynamic (the TorchScript exporter bakes sizes into "
                f"Reshape; the dynamo one keeps them), or send only sizes it takes, such as {size}"
            )
    return notes


def _refuse_rows_in_other_axes(model: str | Path, names: list[str], shapes: list[list[list[int]]], rows: int) -> None:
    """A QuantserveError when an output's axes after 0 change with the rows run together: their number (CLIP's
    logits_per_image, images × texts) or their content (SLANet's table decoder runs as long as its longest table):
    a response Triton's dynamic batching cannot split per request."""
    for name, many, one in zip(names, shapes[0], shapes[1], strict=True):
        if many[1:] != one[1:]:
            raise QuantserveError(
                f"{model}: output '{name}' has shape {many} for {rows} input rows and {one} for 1 input row: an axis "
                "other than 0 changes with the rows run together (their number, or their content: a decoder's length "
                "is its longest row's), so Triton's dynamic batching cannot split it per request; build it with "
                "--unbatched (Triton then serves it with max_batch_size 0, one request at a time, that axis -1); where "
                "its size follows the values, each request's answer is judged against FP32's for the same request "
                "(INT8's changed lengths against --min-sequence-agreement)"
            )


def _require_loadable(path: Path) -> None:
    """A QuantserveError when ONNX Runtime cannot load the user's file as it is (a custom-domain op, an op its
    build lacks): said as such, not as a batch axis problem."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure is said in our line, not also as ORT's error log
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own error types
        raise cannot_load(path, exc) from exc


def _synthetic_rows(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for value in graph_inputs(model):
        shape = [ROWS] + [d.dim_value if d.HasField("dim_value") else OTHER_DYNAMIC_DIM for d in _dims(value)[1:]]
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        if dtype.kind == "f":
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[value.name] = np.ones(shape, dtype)
        else:  # token ids and masks: 1 is a valid id and an "attend" mask
            feeds[value.name] = np.ones(shape, dtype)
    return feeds


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The inputs a caller feeds (not the initializers some exporters also list as inputs)."""
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _dims(value: onnx.ValueInfoProto) -> list[onnx.TensorShapeProto.Dimension]:
    return list(value.type.tensor_type.shape.dim)


def _attr(node: onnx.NodeProto, name: str) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), 0)
