"""The sizes a build was verified at, where its model declares any size on an axis past the batch.

esrgan-medium's ×2 upscaler takes [N, H, W, 3] with H and W dynamic and is served as dims [-1, -1, 3]; its INT8 build
was verified on 64×64 crops alone (PSNR to FP32 46.26 dB, budget 45), and single images at 48×80 read 43.97 dB and at
200×300 44.63 dB, while optimize said nothing of the sizes it had verified (probe 66D). So where an input's axis past
0 is dynamic in the model and every held-out sample had one size on it, the record says so once (`verified_sizes`),
with the note optimize prints and deploy repeats. It is no refusal: one size is not evidence of drift.

A held-out `.npz` holds one shape per input (rows of several sizes are refused by `quantserve.data`), so the sizes
seen are always one; another size is verified with another file. Not said for an axis the model fixes, for a sequence
axis a length input or a mask marks (its rows' real lengths vary within the padded width: `optimizer.token_values`,
`optimizer.length_axes`), nor for an --unbatched build verified request by request (`optimizer.verify_per_request`,
whose request shapes vary).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.length_axes import length_axes
from optimizer.token_values import real_tokens
from quantserve.data import TensorData

VERIFIED_SIZES = "verified_sizes"  # the verification record's key: {"inputs": [...], "note": "..."}
# an exporter's made-up axis name, no word for a reader: tf2onnx's "unk__511" (esrgan's LR), dynamo's "s0"
MADE_UP_NAME = re.compile(r"unk__\d+|s\d+")


def dynamic_axes(reference: Path) -> dict[str, dict[int, str]]:
    """{input: {axis past 0: its name in the graph ("" where it has none)}} of the axes the graph at `reference`
    leaves dynamic (no fixed size); inputs that are initializers are no inputs."""
    graph = onnx.load(str(reference), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    found: dict[str, dict[int, str]] = {}
    for value in graph.input:
        if value.name in weights or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        axes = {axis: dim.dim_param for axis, dim in enumerate(dims) if axis >= 1 and dim.dim_value <= 0}
        if axes:
            found[value.name] = axes
    return found


def marked_by_length(arrays: Mapping[str, np.ndarray]) -> set[str]:
    """The inputs whose axis 1 a length input or a mask marks: their rows' real lengths vary within the width."""
    marked = {name for axis in length_axes(arrays) for name in axis.inputs}
    read = real_tokens(arrays)
    if read.input_name is not None and read.positions is not None:
        width = read.positions.shape[1]
        marked |= {name for name, a in arrays.items() if np.ndim(a) >= 2 and np.shape(a)[1] == width}
    return marked


def verified_sizes(reference: Path, data: TensorData) -> dict[str, Any] | None:
    """The record of the dynamic axes past 0 (`dynamic_axes`) every held-out sample had one size on, and its note;
    None where there are none (module docstring)."""
    offset = int(data.requests.whole)  # an --unbatched build's data[i] whole: the arrays' axis 0 is the samples'
    marked = marked_by_length(data.arrays)
    inputs = []
    for name, axes in dynamic_axes(reference).items():
        array = data.arrays.get(name)
        if array is None:
            continue
        kept = [a for a in sorted(axes) if a + offset < np.ndim(array) and not (a == 1 and name in marked)]
        if kept:
            sizes = [int(np.shape(array)[a + offset]) for a in kept]
            inputs.append({"input": name, "axes": kept, "names": [axes[a] for a in kept], "sizes": sizes})
    if not inputs:
        return None
    return {"inputs": inputs, "note": sizes_note(inputs)}


def sizes_note(inputs: list[dict[str, Any]]) -> str:
    """E.g. "verified at input 'x' H×W 64×64 only: …": the one note, every input's verified sizes named."""
    places = " and ".join(_place(entry) for entry in inputs)
    return (
        f"verified at {places} only: the model declares any size there (served as -1), and the build's drift can "
        "differ at other sizes; verify at the sizes you serve (pass --eval with a .npz of each size, or `quantserve "
        "evaluate` the deployed model on data of them)"
    )


def _place(entry: Mapping[str, Any]) -> str:
    """ "input 'x' H×W 64×64" by the graph's axis names, or "input 'x' axes 1, 2 at 64×64" where it names them not,
    alike, or by an exporter's made-up name (`MADE_UP_NAME`)."""
    names, sizes = list(entry["names"]), "×".join(str(size) for size in entry["sizes"])
    if all(n and not MADE_UP_NAME.fullmatch(n) for n in names) and len(set(names)) == len(names):
        return f"input '{entry['input']}' {'×'.join(names)} {sizes}"
    word = "axis" if len(names) == 1 else "axes"
    return f"input '{entry['input']}' {word} {', '.join(str(a) for a in entry['axes'])} at {sizes}"


def recorded_sizes_note(verification: Mapping[str, Any] | None) -> str:
    """The note a build's verification record carries (`VERIFIED_SIZES`); "" where it carries none."""
    return str(((verification or {}).get(VERIFIED_SIZES) or {}).get("note") or "")
