"""Why the data's check rows do not run (`does_not_run`): a graph that fixes the batch at 1, a model whose axis 0 is a
sample's frames, not a batch of samples, or a size fixed in the graph.

madmom's notes_cnn takes one clip (T, 144) and answers (T − 10, 88), a convolution over the frame axis with no batch
axis; its key_cnn pools the clip's frames into one (1, 24). The check rows (8 of the data's rows) were too few frames
for notes_cnn's kernels, and its refusal said "a size the data uses may be fixed in the graph": false, and no route.
Here the rows that failed are repeated to FRAME_PROBE_ROWS and run again: where the model runs and an output's axis 0
is not one row per input row, axis 0 is said to be frames, with the route that builds it: --unbatched, data with one
axis more than the model's inputs (N, T, 144), each data[i] one whole request (`quantserve.data.whole_samples`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.ort_failure import ort_reason
from quantserve.errors import QuantserveError

FRAME_PROBE_ROWS = 64  # rows tried where the data's check rows fail: more frames than the kernels of a clip's CNN need


def whole_sample_route(session: Any, feeds: dict[str, np.ndarray]) -> str:
    """How --unbatched takes whole samples for `session`'s model: data of shape (N, T, <the other axes of the rows in
    `feeds`>) for its first input, T a sample's frames (the export names axis 0 `batch`, which it is not)."""
    name = session.get_inputs()[0].name
    dims = ", ".join(["N", "T", *(str(d) for d in np.shape(feeds[name])[1:])]) if name in feeds else "N, T, …"
    return (
        f"if each request is one whole sample, build it with --unbatched and give data of shape ({dims}) for "
        f"input '{name}', each data[i] one request (Triton then serves it with max_batch_size 0)"
    )


def frames_line(session: Any, feeds: dict[str, np.ndarray]) -> str:
    """'' unless the rows of `feeds` (which failed to run) repeated to FRAME_PROBE_ROWS run and an output's axis 0 is
    not one row per input row; else why axis 0 is not a batch of samples, and the route (`whole_sample_route`)."""
    rows = len(next(iter(feeds.values())))
    if rows == 0 or rows >= FRAME_PROBE_ROWS:
        return ""
    order = np.arange(FRAME_PROBE_ROWS) % rows
    grown = {name: np.take(array, order, axis=0) for name, array in feeds.items()}
    try:
        answers = session.run(None, grown)
    except Exception:  # ORT's own error types: not a matter of too few frames; said by the caller
        return ""
    for output, value in zip(session.get_outputs(), answers, strict=True):
        shape = list(np.shape(value))
        if shape and shape[0] == FRAME_PROBE_ROWS:
            continue
        got = f"{shape[0]} rows ({FRAME_PROBE_ROWS} − {FRAME_PROBE_ROWS - shape[0]})" if shape else "no axis 0"
        return (
            f"on {FRAME_PROBE_ROWS} rows it runs and output '{output.name}' has shape {shape}, {got}: axis 0 is not a "
            "batch of samples but one sample's frames (a time axis the model convolves or pools over), so it cannot "
            f"be batched along it; {whole_sample_route(session, feeds)}"
        )
    return ""


def does_not_run(session: Any, feeds: dict[str, np.ndarray], model: str | Path, exc: Exception) -> QuantserveError:
    """Why the rows of `feeds` failed with `exc`, in one line naming `model`. Where the first row alone runs and
    the first two do not, the graph fixes the batch at 1 though its inputs declare it dynamic (khmersm's tagger:
    a Reshape to [seq, 1, heads, dim] in its attention), and --unbatched builds it as it is; else a size the data
    uses may be fixed in the graph, and the exporter is named only where the graph names it; but where the rows
    repeated to more run and an output's axis 0 is not one row per row, axis 0 is a sample's frames
    (`optimizer.frame_axis`: madmom's notes_cnn, a convolution over a clip's frames, needs 11)."""
    rows = len(next(iter(feeds.values())))
    one = {name: array[:1] for name, array in feeds.items()}
    if rows > 1 and _runs(session, one) and (rows == 2 or not _runs(session, {n: a[:2] for n, a in feeds.items()})):
        return QuantserveError(
            f"{model}: the model runs on one row ({_given(one)}) but not on {rows} ({ort_reason(exc)}): its graph "
            "fixes the batch at 1; optimize it with --unbatched (one row a request)"
        )
    frames = frames_line(session, feeds)
    if frames:
        return QuantserveError(
            f"{model}: the model does not run on the data's {rows} rows ({_given(feeds)}: {ort_reason(exc)}); {frames}"
        )
    return QuantserveError(
        f"{model}: the model does not run on the data's rows ({_given(feeds)}): {ort_reason(exc)}; a size the data "
        f"uses may be fixed in the graph{_exporter_note(session)}"
    )


def _runs(session: Any, feeds: dict[str, np.ndarray]) -> bool:
    try:
        session.run(None, feeds)
    except Exception:  # ORT's own error types: said by the caller
        return False
    return True


def _given(feeds: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{name} {list(np.shape(array))}" for name, array in feeds.items())


def _exporter_note(session: Any) -> str:
    """Which exporter baked a size into the graph, where the graph says it: older TorchScript exports named their
    graph 'torch-jit-export' or 'torch_jit'; torch 2.13's, like the dynamo exporter's (khmersm's, blamed on
    TorchScript), is 'main_graph' by producer 'pytorch', which says neither. '' where the graph does not say."""
    meta = session.get_modelmeta()
    said = " ".join([meta.producer_name, meta.graph_name, meta.description, meta.graph_description]).lower()
    if any(mark in said for mark in ("torchscript", "torch-jit", "torch_jit")):
        return " (the TorchScript exporter bakes an example's sizes into Reshape)"
    return ""
