"""Recurrent state: the input/output pairs a streaming model carries from one call to the next, and the closed-loop
check that runs the held-out rows as one stream, each model fed its own state.

Per-row verification feeds every held-out row the FP32 state saved in the data, so it sees one step of INT8 error
and never its build-up: silero-vad 6.2.3 (its state a batch-axis-0 input `state_b`, output `stateN_b`) shipped at
flag agreement 0.9943 row by row, while fed its own state over a 90 s stream its state's cosine to FP32 decayed to
0.936 and its speech decisions agreed on 0.85 of the frames (F1 0.735 -> ~0.56). So for a model with state pairs
the held-out rows are also run in order at batch 1, FP32 and the candidate each feeding its previous state output
back (the first row's state from the data), and the non-state outputs of that loop are judged by the same
`measure_drift`, kinds and budget; the state's cosine to FP32 per step is recorded (mean, worst, last).

Held-out rows are often many sequences in order, each starting from a fresh state (g2p_en's GRU decoder: 2400 steps
of 323 words, each word's first state the encoder's): carried across a word's end, each model's state never took the
next word's fresh one. So a row whose state in the data is not FP32's state output of the row before (FP32 run on the
data's own rows: `sequence_starts`) starts a sequence, and there both models take the data's state.

The INT8 search judges its candidates row by row, and confirms its winner by this check (`optimizer.int8_confirm`:
the next that holds it where the winner misses); verification judges the one shipped by it again (`verify`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget, Refusal
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.errors import QuantserveError
from quantserve.metrics import cosine_similarity
from quantserve.runner import Runner, one_row

NO_STATE = "none"  # --state none: the model has no recurrent state, whatever its inputs and outputs look like
# name pairs (input word, output word) a state's input and output differ by, one token of the name apart
# (a lone in/out, or input/output, is no state: an autoencoder's `input` and `output`)
_WORD_PAIRS = (("in", "out"), ("past", "present"), ("prev", "next"), ("old", "new"))
_TOKENS = re.compile(r"[._/:\-]+")
# ops whose first input's values come out unchanged (a shape or type aside): an output made only of them is an input
# passed through, no state (arabic-name-romanizer's encoder: `src_mask_out = Identity(src_mask)`, guessed a state,
# had the closed loop feed every row the first row's mask)
_PASS_THROUGH = frozenset({"Identity", "Cast", "CastLike", "Reshape", "Squeeze", "Unsqueeze", "Flatten"})


@dataclass(frozen=True)
class StatePair:
    """One recurrent state: the graph output whose value is the next call's `input`."""

    output: str
    input: str

    def __str__(self) -> str:
        return f"{self.output}={self.input}"


def parse_state_flags(values: Sequence[str] | None) -> dict[str, str] | None:
    """`--state OUT=IN` (repeatable) as {output: input}; `--state none` as {} (no state); no flag: None (detect)."""
    if not values:
        return None
    if [v.strip().lower() for v in values] == [NO_STATE]:
        return {}
    pairs: dict[str, str] = {}
    for value in values:
        output, sep, input_name = value.partition("=")
        if not sep or not output.strip() or not input_name.strip() or value.strip().lower() == NO_STATE:
            raise QuantserveError(
                f"--state {value}: expected OUTPUT=INPUT (the output fed back as that input next call), or "
                "--state none alone"
            )
        pairs[output.strip()] = input_name.strip()
    return pairs


def _signature(value: onnx.ValueInfoProto) -> tuple[int, list[int | str | None]] | None:
    """Element type and the dims after axis 0 (a value, a symbol, or None unknown); None without a batch axis."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape") or len(tensor.shape.dim) < 1:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim[1:]]
    return tensor.elem_type, dims


def _alike(
    a: tuple[int, list[int | str | None]], b: tuple[int, list[int | str | None]], *, symbols_open: bool = False
) -> bool:
    """Same element type and dims after the batch axis; `symbols_open`: a symbol (`dim_param`) matches a fixed value
    (two symbols must be the same: a KV cache's `past_len` against `total_len` grows, no state to feed back) —
    shape inference leaves a named dim where a Slice feeds the output (FSMN-VAD's `out_cache1..3` declared
    'Sliceout_cache1_dim_2' against `in_cache1`'s 19: three of its four caches were fed from the data, unsaid)."""
    if a[0] != b[0] or len(a[1]) != len(b[1]):
        return False
    return all(
        x is None or y is None or x == y or (symbols_open and isinstance(x, str) != isinstance(y, str))
        for x, y in zip(a[1], b[1], strict=True)
    )


def _token_pair(input_token: str, output_token: str) -> bool:
    """state/staten, h/hn, h0/hn, c/cn, state_in/state_out, past/present, r1i/r1o, ... The last, a stem ending in a
    digit with `i` then `o`, is Robust Video Matting's (its official ONNX and human-models' rvm: r1i..r4i in, r1o..r4o
    out): four states of distinct shapes were judged as answers, with no closed loop and no word of --state."""
    if output_token in (input_token + "n", input_token + "new", input_token + "next"):
        return True
    stem = input_token[:-1]
    if stem and stem[-1].isdigit() and (input_token[-1], output_token) == ("i", stem + "o"):
        return True
    if input_token.endswith("0") and output_token in (input_token[:-1] + "n", input_token[:-1] + "1"):
        return True
    return (input_token, output_token) in _WORD_PAIRS


def names_pair(output: str, input_name: str) -> bool:
    """Whether `output` is named as the next value of `input_name`: the names split at . _ / - differ in exactly
    one token, an input/output word pair (`_token_pair`) beside a shared one; `past_key_values.*` / `present.*` as
    Hugging Face names them."""
    out, inp = output.lower(), input_name.lower().replace("past_key_values", "past")
    out_tokens, in_tokens = _TOKENS.split(out), _TOKENS.split(inp)
    if len(out_tokens) != len(in_tokens) or (inp, out) == ("in", "out"):
        return False
    differing = [(i, o) for i, o in zip(in_tokens, out_tokens, strict=True) if i != o]
    return len(differing) == 1 and _token_pair(*differing[0])


def find_state_pairs(model_path: Path, wanted: Mapping[str, str] | None = None) -> list[StatePair]:
    """The recurrent state pairs of the ONNX model at `model_path`: each output whose element type and dims after
    the batch axis match an input's, paired by name (`names_pair`), or, where no name pairs, the only such pair of a
    model that has other inputs and other outputs too — a step's frame or token in, its answer out beside the state
    (a denoiser's output shaped like its only input is no state, nor is a refiner's only output: feats (N, 128) and
    their SNR in, refined (N, 128) out, was fed back as the next row's features); an input passed through
    (`passed_through`) is no state, named or not, nor, unnamed, an integer scalar a row (`_has_features`). `wanted`:
    the pairs `--state` named ({}: none), checked against the graph instead of detected."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = {v.name: _signature(v) for v in graph.input if v.name not in initializers}
    outputs = {v.name: _signature(v) for v in graph.output}
    if wanted is not None:
        for output, input_name in wanted.items():
            if output not in outputs or input_name not in inputs:
                raise QuantserveError(
                    f"--state {output}={input_name}: the model has no output '{output}' or no input '{input_name}' "
                    f"(outputs: {', '.join(outputs)}; inputs: {', '.join(inputs)})"
                )
            sig_out, sig_in = outputs[output], inputs[input_name]
            if sig_out is not None and sig_in is not None and not _alike(sig_out, sig_in, symbols_open=True):
                raise QuantserveError(
                    f"--state {output}={input_name}: output '{output}' is not of the input's type and shape, so it "
                    "cannot be fed back as it"
                )
        return [StatePair(output, input_name) for output, input_name in wanted.items()]
    passed = passed_through(graph, set(inputs))  # an input handed back unchanged is no state, named or not
    candidates = [
        (out, inp)
        for out, sig_out in outputs.items()
        for inp, sig_in in inputs.items()
        if sig_out is not None and sig_in is not None and _alike(sig_out, sig_in)
    ]
    named = [
        (out, inp)
        for out, sig_out in outputs.items()
        for inp, sig_in in inputs.items()
        if sig_out is not None
        and sig_in is not None
        and out not in passed
        and _alike(sig_out, sig_in, symbols_open=True)
        and names_pair(out, inp)
    ]  # paired by name, a symbol against a value is no mismatch; unnamed guesses stay strict
    if len({inp for _, inp in named}) != len(named) or len({out for out, _ in named}) != len(named):
        named = []  # one input claimed by two outputs (or the reverse): not a state to guess at
    if named:
        return [StatePair(out, inp) for out, inp in named]
    candidates = [(out, inp) for out, inp in candidates if out not in passed and _has_features(outputs[out])]
    if len(candidates) == 1 and len(inputs) > 1 and len(outputs) > 1:  # a guess needs a step's input and answer
        return [StatePair(*candidates[0])]
    return []


FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
)


def _has_features(signature: tuple[int, list[int | str | None]] | None) -> bool:
    """Whether a value could be a state guessed unnamed: an axis after the batch one (for integers, one of more than
    one entry), a vector or more a row. A (B,) or (B, 1) integer a row is a length, a count, an index: trueocr's
    recognizer takes `widths` (B,) int64 and returns `lengths` (B,) int64, and unnamed, that was guessed a state —
    `evaluate` fed each row's lengths back as the next row's widths, 198 of 200 lines came out empty, and it scored a
    build that changed one line in five at id agreement 0.995 (session 43)."""
    if signature is None or not signature[1]:
        return False
    return signature[0] in FLOAT_TYPES or any(d not in (1, None) for d in signature[1])


def passed_through(graph: onnx.GraphProto, inputs: set[str]) -> set[str]:
    """The graph's outputs that are one of `inputs` passed through `_PASS_THROUGH` ops only (or the input itself)."""
    producers = {out: node for node in graph.node for out in node.output if node.op_type in _PASS_THROUGH}
    return {value.name for value in graph.output if _source(value.name, producers) in inputs}


def _source(name: str, producers: Mapping[str, onnx.NodeProto]) -> str:
    """The value `name` comes from through `producers` (pass-through nodes by output), first inputs followed."""
    seen = set()
    while name in producers and producers[name].input and name not in seen:
        seen.add(name)
        name = producers[name].input[0]
    return name


# a state in the data differs from FP32's state output of the row before beyond this share of the state's largest
# magnitude: a sequence starts there (g2p_en's GRU: 2077 rows within 5e-6 of FP32's, the 322 word starts 0.1 and more)
STATE_NOISE = 1e-3


def state_apart(given: np.ndarray | None, produced: np.ndarray | None) -> np.ndarray | None:
    """Per row after the first, whether the data's state `given[i]` differs beyond STATE_NOISE from `produced[i - 1]`,
    the state output FP32 gives on the data's row before; None where they cannot be compared (absent, shaped apart,
    fewer than two rows) or the data's column is one value for every row (a state never recorded)."""
    if given is None or produced is None or len(given) < 2 or np.shape(given) != np.shape(produced):
        return None
    given, produced = np.asarray(given, np.float64), np.asarray(produced, np.float64)
    if np.allclose(given, given[:1]):
        return None
    scale = float(np.nanmax(np.abs(produced))) if np.isfinite(produced).any() else 0.0
    worst = np.abs(given[1:] - produced[:-1]).reshape(len(given) - 1, -1).max(axis=1)
    return ~(worst <= STATE_NOISE * max(scale, 1e-6))  # NaN counts as apart


def sequence_starts(
    arrays: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], pairs: Sequence[StatePair]
) -> np.ndarray:
    """The rows where a sequence starts in the data: the first, and each whose state input (any pair's) is not FP32's
    state output of the row before, `reference` being FP32's outputs on the data's own rows (each fed the data's
    state). Only where a minority of rows differ: most rows differing are rows out of order or no stream at all
    (`loadtest.served_stream.order_notes` says it), and those are run as one stream from the first row, as before."""
    rows = int(next(iter(arrays.values())).shape[0]) if arrays else 0
    breaks = np.zeros(max(rows - 1, 0), bool)
    for pair in pairs:
        apart = state_apart(arrays.get(pair.input), reference.get(pair.output))
        if apart is None:
            continue
        if apart.sum() > len(apart) / 2:
            return np.zeros(min(rows, 1), np.int64)
        breaks |= apart
    return np.concatenate([np.zeros(min(rows, 1), np.int64), np.flatnonzero(breaks) + 1]).astype(np.int64)


def run_stream(
    path: Path,
    arrays: Mapping[str, np.ndarray],
    pairs: Sequence[StatePair],
    whole: bool = False,
    starts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every output of the model at `path` over the rows of `arrays` in order, one row a call, each state input fed
    the previous call's state output (the first row's, and each of `starts`' rows', from `arrays`: a sequence's
    first, `sequence_starts`); outputs stacked along axis 0. `whole` (`TensorData.requests.whole`): each row is one
    whole request, fed as `arrays[name][row]`, no sample axis."""
    with OnnxRuntimeRunner(path) as runner:
        return stream_through(runner, arrays, pairs, whole, starts)


def stream_through(
    runner: Runner,
    arrays: Mapping[str, np.ndarray],
    pairs: Sequence[StatePair],
    whole: bool = False,
    starts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`run_stream` on an active runner (ONNX Runtime here, a served model's TritonRunner in `evaluate`). Whole
    requests were fed as `data[row:row + 1]`, one axis too many: faster-whisper's Silero VAD (utterances of
    (125, 576) frames, h and c (1, 1, 128)) crashed optimize after its calibration (session 44)."""
    rows = int(next(iter(arrays.values())).shape[0])
    fresh = {0, *(np.asarray(starts).tolist() if starts is not None else [])}  # rows fed the data's own state
    state: dict[str, np.ndarray] = {}
    steps: list[dict[str, np.ndarray]] = []
    for row in range(rows):
        feeds = {name: np.asarray(values[row] if whole else values[row : row + 1]) for name, values in arrays.items()}
        if row not in fresh:
            feeds.update(state)
        got = runner.infer(feeds)
        state = {pair.input: got[pair.output].astype(arrays[pair.input].dtype, copy=False) for pair in pairs}
        refuse_growing_state(pairs, state, arrays, whole)
        steps.append({name: one_row(value) for name, value in got.items()} if whole else got)
    return {name: np.concatenate([step[name] for step in steps]) for name in steps[0]} if steps else {}


def refuse_growing_state(
    pairs: Sequence[StatePair], state: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray], whole: bool = False
) -> None:
    """One line where a state output comes back shaped unlike its input's rows: a cache that grows each call (a
    decoder's past/present keys) is no fixed state to feed back (it crashed in a concatenate, a traceback). `whole`:
    a row is one request, no sample axis: the state comes back shaped as the row."""
    for pair in pairs:
        got = state[pair.input].shape if whole else state[pair.input].shape[1:]
        if got != np.shape(arrays[pair.input])[1:]:
            after = "" if whole else " after the batch axis"
            raise QuantserveError(
                f"state {pair}: output '{pair.output}' came back shaped {got}{after}, "
                f"input '{pair.input}' takes {np.shape(arrays[pair.input])[1:]}: a cache that grows is no "
                "fixed state to feed back; pass --state none (or --state OUT=IN for the real ones)"
            )


def closed_loop_record(
    reference: Path,
    candidate: Path,
    arrays: Mapping[str, np.ndarray],
    pairs: Sequence[StatePair],
    kinds: Mapping[str, str],
    budget: DriftBudget,
    labels: np.ndarray | None = None,
    whole: bool = False,
    starts: np.ndarray | None = None,
) -> dict[str, Any]:
    """FP32 and the candidate each run as one stream on its own state (`run_stream`, `whole` requests and sequence
    `starts` as there); the non-state outputs judged by `measure_drift` with `kinds` (as inferred row by row) and
    `budget`; each state's cosine to FP32 per step."""
    expected = run_stream(reference, arrays, pairs, whole, starts)
    got = run_stream(candidate, arrays, pairs, whole, starts)
    sequences = 1 if starts is None else max(len(starts), 1)
    states = {pair.output for pair in pairs}
    judged = [name for name in expected if name not in states]
    report = measure_drift(
        {n: expected[n] for n in judged}, {n: got[n] for n in judged}, kinds, budget, labels, dict(arrays)
    )
    state_drift = {}
    for pair in pairs:
        # the project's one cosine; a non-finite state (NaN) counts as the worst, -1
        cos = np.nan_to_num(cosine_similarity(expected[pair.output], got[pair.output]), nan=-1.0)
        state_drift[pair.output] = {
            "input": pair.input,
            "cosine_mean": float(cos.mean()),
            "cosine_worst": float(cos.min()),
            "cosine_worst_step": int(cos.argmin()),
            "cosine_last": float(cos[-1]),
        }
    first = "the first row's" if sequences == 1 else f"each sequence's first row's ({sequences} sequences)"
    return {
        "run": "held-out rows in order as one stream, batch 1, each model fed its own previous state output "
        f"({first} state from the data)",
        "pairs": [{"output": p.output, "input": p.input} for p in pairs],
        "rows": int(next(iter(arrays.values())).shape[0]),
        "sequences": sequences,
        "judged_outputs": judged,
        "state": state_drift,
        **report.to_dict(),
    }


def closed_loop_refusal(record: Mapping[str, Any], precision: str = "int8", others: str = "") -> Refusal:
    """The one line where the candidate holds the budget row by row (each row fed FP32's state) but not as a stream
    fed its own state, `others` naming the loop's violations past the first; the record rides with it for
    `optimize --json`."""
    loop = record["closed_loop"]
    violations = list(loop.get("violations", []))
    kinds = {name: output.get("kind", "") for name, output in loop.get("outputs", {}).items()}
    first = violations[0]["line"] if violations else "no violation recorded"
    if violations and kinds.get(violations[0]["output"]):
        kind = kinds[violations[0]["output"]]
        name = violations[0]["output"]
        first = first.replace(f"output '{name}'", f"output '{name}' ({kind})", 1)
    states = "; ".join(
        f"'{name}' fed back as '{drift['input']}', its cosine to FP32 down to {drift['cosine_worst']:.4g}"
        for name, drift in loop["state"].items()
    )
    subject, deploy = ("INT8", ": deploy fp32") if precision == "int8" else (f"the {precision.upper()} build", "")
    return Refusal(
        f"{subject} holds row by row but not fed its own state: over {loop['rows']} consecutive rows{_in(loop)}, "
        f"{first}{others} "
        f"(state {states}); nothing written{deploy} (or pass --keep-failing to ship it; --state none if that is "
        "no recurrent state)",
        {"refused_for": "drift", "violations": violations, "verification": dict(record)},
    )


def _in(loop: Mapping[str, Any]) -> str:
    """', in N sequences each started from the data's state' where the data holds more than one."""
    sequences = int(loop.get("sequences", 1))
    return f" in {sequences} sequences (each started from the data's state)" if sequences > 1 else ""
