"""Whether a build can be served batched (max_batch_size > 0): Triton stacks the requests it batches along axis 0
of every input and hands each its rows of every output back, so axis 0 of each must be the one batch axis.

Seen against tritonserver 2.51: a hand-made build whose second input `y` had axis 0 named "k" (a set of rows the
model sums over) beside `x` ("batch", 8) was deployed with max_batch_size 32 and `y` dims [4]; every answer then
came from the 32 requests batched with it (a max difference of 7.97 from ONNX Runtime on the whole file).
`optimize` refuses such a model (its rows are not independent), and names every axis 0 "batch" in the manifest;
deploy reads the manifest, and the model file behind it, so a hand-made or edited build is refused alike.
"""

from __future__ import annotations

from pathlib import Path

from quantserve.artifact import DEFAULT_MAX_BATCH, Manifest, TensorSpec
from quantserve.errors import QuantserveError

BATCH = "batch"  # the name optimize gives axis 0 of every input and output (optimizer.export)
AS_IS = "deploy it with --max-batch 0 (each request served as it comes), or re-export it with the batch first"


def max_batch_for(manifest: Manifest, asked: int | None) -> int:
    """The max_batch_size to deploy `manifest`'s build with: `asked`, else DEFAULT_MAX_BATCH, or 0 for a build made
    with `optimize --unbatched` (one request at a time, its inputs' full shapes), which refuses any batch."""
    if not manifest.unbatched:
        return DEFAULT_MAX_BATCH if asked is None else asked
    if asked:
        raise QuantserveError(
            f"model '{manifest.name}' was built with --unbatched (it takes one request at a time and was verified "
            f"only so), so it cannot be served with --max-batch {asked}; deploy it with --max-batch 0 (the default "
            "for such a build)"
        )
    return 0


def batch_dependence_warning(manifest: Manifest, max_batch: int) -> str:
    """One line where `manifest`'s build answers by its batch neighbours (its verification judged several batch
    compositions: dynamic INT8 takes one activation scale per batch) and is served with a `max_batch` above the
    largest batch it was verified at; "" otherwise, and for builds older than that record (session 61). rxnfp's BERT
    classifier held in batches of 16 and flipped a near-tie row in batches of 64."""
    record = manifest.verification or {}
    largest = record.get("largest_batch_verified")
    if not record.get("batch_compositions") or not isinstance(largest, int) or max_batch <= largest:
        return ""
    return (
        f"model '{manifest.name}' answers depend on the rows batched with it (one activation scale per batch) and "
        f"were verified in batches of at most {largest}; served with --max-batch {max_batch}, a larger batch may "
        f"change answers beyond what verification measured: deploy with --max-batch {largest}, or check the served "
        "model with `quantserve evaluate`"
    )


def check_batch_axes(manifest: Manifest) -> None:
    """Refuse, for a batched deploy, an input whose axis 0 (in the manifest) is not the batch axis the others share:
    fixed, of another name, or absent (rank 0), and an output without a dynamic axis 0."""
    batched = [t for t in manifest.inputs if t.has_batch_axis]
    if not batched:
        raise QuantserveError(f"model '{manifest.name}' has no dynamic batch axis; deploy it with --max-batch 0")
    first = next((t for t in batched if t.shape[0] == BATCH), batched[0])
    for spec in manifest.inputs:
        if spec.shape[:1] != first.shape[:1]:
            raise QuantserveError(
                f"model '{manifest.name}': input '{spec.name}' has {_axis0(spec)}, not the batch axis "
                f"'{first.shape[0]}' of input '{first.name}', and Triton batches requests along axis 0 of every "
                f"input, so it cannot batch this model; {AS_IS}"
            )
    unbatched = next((t for t in manifest.outputs if not t.has_batch_axis), None)
    if unbatched is not None:
        raise QuantserveError(
            f"model '{manifest.name}': output '{unbatched.name}' has {_axis0(unbatched)}, not a batch axis, and "
            f"Triton hands each batched request its rows along axis 0 of every output; {AS_IS}"
        )


def check_model_batch_axes(model_path: Path) -> None:
    """Refuse, for a batched deploy, an ONNX model file with an input whose axis 0 is fixed (the manifest may name
    it "batch" all the same): a batch of any other number of rows fails in ONNX Runtime. Dynamic axes' names are
    not compared: exporters name each input's batch axis apart (tf2onnx: unk__615, unk__616)."""
    from serving.config_fit import onnx_interface

    graph = onnx_interface(model_path)
    for name, (_, shape) in (graph[0] if graph else {}).items():
        if shape and shape[0] is not None:
            raise QuantserveError(
                f"{model_path}: input '{name}' has axis 0 fixed at {shape[0]} in the model file, so Triton cannot "
                f"batch requests along it; {AS_IS}"
            )


def _axis0(spec: TensorSpec) -> str:
    if not spec.shape:
        return "no axis 0 (rank 0)"
    axis = spec.shape[0]
    return f"axis 0 '{axis}'" if isinstance(axis, str) else f"axis 0 fixed at {axis}"
