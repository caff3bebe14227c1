"""The data's array names against a PyTorch model's inputs, checked before the export, with the flag that fixes them.

A PyTorch model's input names are its example's, so data naming none of them is refused before the export would
spend minutes and gigabytes finding out. Kept apart from the pipeline, which calls it from its export stage; the
arrays are checked against the exported graph's inputs after the export (`quantserve.data.check_against`).
"""

from __future__ import annotations

from pathlib import Path

from optimizer.source import ModelSource, forward_parameters
from quantserve.data import TensorData
from quantserve.errors import QuantserveError


def check_names_before_export(model: ModelSource, data_files: list[tuple[str | Path, TensorData]]) -> None:
    """A PyTorch model's input names are its example's: data naming none of them is refused before the export
    (a 200 000-class head took 30 s and 3 GB to say so), with the flag that names them. Data naming some is
    left to the check after the export, which knows the inputs the graph kept. Files naming their arrays
    differently are refused first, together: each checked alone told the user to rename one, then the
    other back (session 52)."""
    named = {str(path): sorted(data.arrays) for path, data in data_files}
    if len({tuple(names) for names in named.values()}) > 1:
        each = ", ".join(f"{path} has {names}" for path, names in named.items())
        inputs = f" (the model's inputs: {sorted(model.input_names)})" if model.input_names else ""
        raise QuantserveError(f"the data files name their arrays differently: {each}; name them alike{inputs}")
    if model.kind == "onnx" or not model.input_names:
        return
    for data_path, data in data_files:
        names = sorted(data.arrays)
        if names and not set(names) & set(model.input_names):
            hint = ""
            if len(names) == len(model.input_names):
                hint = names_hint(model, names)
            raise QuantserveError(
                f"{data_path}: arrays {names} do not match the model inputs {sorted(model.input_names)}{hint}"
            )


def names_hint(model: ModelSource, names: list[str]) -> str:
    """The `--input-names` to suggest for data arrays `names` that name none of the model's inputs: in `forward`'s
    order where they are its parameters, else with the order left to the user. The hint was the names sorted,
    "in the order of the model's example inputs": for forward(b, a), `--input-names a,b` as told shipped the two
    swapped, at chance accuracy (session 41)."""
    order = forward_parameters(model.module) if model.kind == "torch" else None
    if len(names) == 1:
        return f"; name them with --input-names {names[0]}"
    if order is not None and set(names) <= set(order):
        return f"; name them with --input-names {','.join(n for n in order if n in names)} (forward's order)"
    return f"; name them with --input-names, one per example input in their order (the data has {', '.join(names)})"
