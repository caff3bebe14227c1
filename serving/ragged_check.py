"""Is `deploy --ragged-batching pad` exact for this model? Checked in-process before a deploy writes anything.

With pad, the embedded runner (optimizer/python_backend/model.py) right-pads each request's inputs with zeros to the
longest request in Triton's batch and cuts the outputs that share a padded axis back to each request's length. That
is exact only for a model that masks or ignores padded positions: a text encoder whose attention mask (padded with
zeros too) hides them is; a mean over the sequence is not, and its answer depends on which requests Triton happened
to batch with it (a probe saw 1.49 on one request, sent three times). `evaluate` sends one request at a time and
cannot see it, so deploy runs the runner's own pad/cut code (`run_as_one_batch`) on ONNX Runtime here.

The rows: a build folder holds no data (manifest, model, reference model: `verification.data` only names the file
optimize read), so they are synthesized from the session's inputs: one request of two rows at SHORT positions on
every dynamic non-batch axis, one of one row at LONG; int inputs are ids 0 or 1 (valid for any embedding table of two
rows or more, token types included), except inputs named like a mask, which are all ones (every position real, as a
client sends them); float inputs are normal noise, then (in two more rounds) noise all negative and all positive, kept
half a unit from zero. Each request is run alone at its own length, then both as one padded batch; every output, cut
back as the runner cuts it, must match the alone run. Zero padding hides inside noise of either sign from a max or a
min over the sequence: a probe's max-pool over frame log-probabilities (all negative) passed on normal noise and then,
served with pad, changed 26–43 of 64 answers under 16 clients (session 43); the padded zeros win a max of negatives.

Tolerance: a float output may differ by at most PAD_TOLERANCE × its scale (the largest |value| in the alone runs).
ONNX Runtime sums in another order when the batch shape changes (blocked GEMMs and reductions): float32 rounding,
relative errors of 1e-7–1e-5 (the README's text encoder, FP32 and static INT8 builds: 1.9e-7 of its scale); a real
padding effect is of the order of the output itself (the tests' sequence model, its mean over 5 of 16 positions:
0.60 on a scale of 0.87). 1e-4 leaves an order of magnitude or more on either side. Integer and other outputs must
be equal.

A dynamic-INT8 build quantizes each activation with the range of the whole batch, so its answers move with their
neighbours in group mode too, by the per-batch ranges optimize judged against its drift budget on batches of the
user's (padded) rows; pad adds padded positions to a batch's range as those rows' own padding did. Checked as
itself it moved by 0.055 on logits of scale 4.2 (the README's text encoder) and was refused, as was the README's
recipe with it. For such a build the check runs on its FP32 reference (`fp32.onnx`, the same graph unquantized):
whether the model masks padding is the graph's; the per-batch ranges are the scheme's, already measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.python_backend.model import run_as_one_batch
from quantserve.artifact import Artifact
from quantserve.errors import QuantserveError

SHORT, LONG = 5, 16  # positions on each dynamic non-batch axis of the two requests
PAD_TOLERANCE = 1e-4  # of the output's scale (module docstring)
SIGNS = (0, -1, 1)  # float rows of either sign, then all negative, then all positive (module docstring)
SIGN_OFFSET = 0.5  # how far from zero one-signed rows stay
EXACT = "deploy with --ragged-batching group (exact)"


def check_pad_exact(artifact: Artifact, name: str) -> None:
    """Refuse, in one line, a model whose outputs change when its requests are padded into one batch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(checked_model(artifact)), providers=["CPUExecutionProvider"])
    input_dims = {i.name: dict(enumerate(i.shape)) for i in session.get_inputs()}
    output_dims = {o.name: list(o.shape) for o in session.get_outputs()}
    inputs = [t.name for t in artifact.manifest.inputs]
    outputs = [t.name for t in artifact.manifest.outputs]
    rng = np.random.default_rng(0)
    dtypes = {t.name: t.dtype for t in artifact.manifest.inputs}
    floats = any(np.dtype(dtypes.get(i, "float32")).kind == "f" for i in input_dims)
    for sign in SIGNS if floats else SIGNS[:1]:
        requests = [
            synthesized(input_dims, dtypes, rows, length, rng, sign) for rows, length in ((2, SHORT), (1, LONG))
        ]
        try:
            alone = [run_as_one_batch(session, [r], inputs, outputs, input_dims, output_dims)[0] for r in requests]
            together = run_as_one_batch(session, requests, inputs, outputs, input_dims, output_dims)
        except Exception as exc:  # ORT refused the synthesized rows, alone or padded: the check cannot be made
            raise QuantserveError(
                f"--ragged-batching pad cannot be checked for model '{name}': ONNX Runtime failed on synthesized rows "
                f"(ids 0–1, masks of ones, {SHORT} and {LONG} positions: {_first_line(exc)}); {EXACT}"
            ) from exc
        _compare(name, outputs, alone, together)


def _compare(name: str, outputs: list[str], alone: list[dict[str, Any]], together: list[dict[str, Any]]) -> None:
    """Refuse the first output whose padded batch differs from the rows run alone beyond the tolerance."""
    for output in outputs:
        pairs = [(a[output], t[output]) for a, t in zip(alone, together, strict=True)]
        worst = max(range(len(pairs)), key=lambda i: _difference(*pairs[i]))
        difference = _difference(*pairs[worst])
        if difference > _tolerance([a for a, _ in pairs]):
            how = f"padded to {LONG} positions" if worst == 0 else f"batched with rows padded to its {LONG} positions"
            raise QuantserveError(
                f"--ragged-batching pad changes model '{name}' output '{output}' ({_said(difference, pairs[worst])} "
                f"between a row alone and {how}): its answers would depend on the requests batched with it; {EXACT}"
            )


def checked_model(artifact: Artifact) -> Path:
    """The model the check runs: the build's, or its FP32 reference for a dynamic-INT8 build (module docstring)."""
    schemes = [str(stage.get("scheme", "")) for stage in artifact.manifest.stages]
    reference = artifact.manifest.files.get("reference")
    if reference and any(scheme.startswith("dynamic") for scheme in schemes):
        path = artifact.path.parent / reference
        if path.is_file():
            return path
    return artifact.path


def synthesized(
    input_dims: dict[str, dict[int, Any]],
    dtypes: dict[str, str],
    rows: int,
    length: int,
    rng: np.random.Generator,
    sign: int = 0,
) -> dict[str, np.ndarray]:
    """One request: `rows` rows, `length` positions on every dynamic non-batch axis (module docstring); float
    values of either sign (`sign` 0), or all of one sign, at least `SIGN_OFFSET` from zero (`SIGNS`)."""
    feeds = {}
    for name, dims in input_dims.items():
        shape = [rows] + [d if isinstance(d, int) and d > 0 else length for _, d in sorted(dims.items())[1:]]
        dtype = np.dtype(dtypes.get(name, "float32"))
        if dtype.kind == "f":
            noise = rng.standard_normal(shape)
            feeds[name] = (noise if not sign else sign * (np.abs(noise) + SIGN_OFFSET)).astype(dtype)
        elif "mask" in name.lower() or dtype.kind == "b":
            feeds[name] = np.ones(shape, dtype)
        elif dtype.kind in "iu":
            feeds[name] = rng.integers(0, 2, shape).astype(dtype)
        else:  # strings: one token per position
            feeds[name] = np.full(shape, "a", dtype=object)
    return feeds


def _difference(alone: np.ndarray, padded: np.ndarray) -> float:
    """The largest |alone − padded|; inf where the shapes or the NaNs differ."""
    if alone.shape != padded.shape:
        return float("inf")
    if alone.dtype.kind not in "fiub" or padded.dtype.kind not in "fiub":
        return 0.0 if np.array_equal(alone, padded) else float("inf")
    a, b = alone.astype(np.float64), padded.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    return float(np.max(np.abs(np.nan_to_num(a - b)), initial=0.0))


def _tolerance(alone: list[np.ndarray]) -> float:
    """PAD_TOLERANCE × the output's largest finite |value| for a float output; 0 (equal) for any other."""
    if any(a.dtype.kind != "f" for a in alone):
        return 0.0
    values = np.concatenate([np.abs(a[np.isfinite(a)]).ravel() for a in alone])
    return PAD_TOLERANCE * float(np.max(values, initial=0.0))


def _said(difference: float, pair: tuple[np.ndarray, np.ndarray]) -> str:
    if pair[0].shape != pair[1].shape:
        return f"shape {pair[0].shape} alone, {pair[1].shape} padded"
    return f"max diff {difference:.3g}" if np.isfinite(difference) else "different values or NaNs"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
