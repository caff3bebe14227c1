"""A recurrent decoder's held-out rows are many sequences in order, each from a fresh state (probe 54, g2p_en's GRU
decoder: 2400 steps of 323 words, each word's first state the encoder's). optimize's stream check carried each model's
state across the word boundaries, and its rollout ran 8 fixed steps from any row, past the end token (id 3): 0.9531,
against 0.9902 cut at FP32's end. Now a row whose state in the data is not FP32's state output of the row before
starts a sequence (fed the data's state), the rollout starts at the sequences and ends at FP32's end token, which the
data shows: a class FP32 answers before the sequence starts that the data never feeds back.

The decoder: hidden' = tanh(hidden·A + E[token]), logits = hidden'·W + b, END (0) answered to end a sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence_line
from optimizer.rollout import TokenFeedback, find_end_token, rollout_record, rollout_refusal
from optimizer.state_loop import StatePair, closed_loop_refusal, run_stream, sequence_starts
from optimizer.transformer import run_model
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

H, C, SEQUENCES, END, START, LONGEST = 16, 10, 60, 0, 1, 12
PAIRS = [StatePair("hidden_out", "hidden")]


def decoder(path: Path, weights: dict[str, np.ndarray]) -> Path:
    nodes = [
        helper.make_node("Gather", ["E", "token"], ["embedded"]),
        helper.make_node("MatMul", ["hidden", "A"], ["carried"]),
        helper.make_node("Add", ["carried", "embedded"], ["mixed"]),
        helper.make_node("Tanh", ["mixed"], ["hidden_out"]),
        helper.make_node("MatMul", ["hidden_out", "W"], ["scores"]),
        helper.make_node("Add", ["scores", "b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "decoder",
        [
            helper.make_tensor_value_info("token", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", H]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", C]),
            helper.make_tensor_value_info("hidden_out", TensorProto.FLOAT, ["N", H]),
        ],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(H, H)))  # a state that remembers: carried across a word, it stays apart
    b = np.zeros(C)
    b[END] = 1.2  # END answered now and then: sequences of a few steps
    return {"E": rng.normal(0, 1, (C, H)), "A": 0.95 * q, "W": rng.normal(0, 1, (H, C)), "b": b}


def greedy_sequences(w: dict[str, np.ndarray], seed: int = 1) -> tuple[dict[str, np.ndarray], list[int]]:
    """SEQUENCES greedy decodes in order, each from a fresh random state and START, until FP32 answers END (never fed
    back) or LONGEST steps; the rows' token and state, and each sequence's first row."""
    rng = np.random.default_rng(seed)
    tokens, hiddens, starts = [], [], []
    for _ in range(SEQUENCES):
        starts.append(len(tokens))
        token, hidden = START, rng.uniform(-1, 1, H).astype(np.float32)
        for _ in range(LONGEST):
            tokens.append(token), hiddens.append(hidden)
            hidden = np.tanh(hidden @ w["A"].astype(np.float32) + w["E"].astype(np.float32)[token]).astype(np.float32)
            token = int(np.argmax(hidden @ w["W"] + w["b"]))
            if token == END:
                break
    return {"token": np.array(tokens, np.int64), "hidden": np.stack(hiddens).astype(np.float32)}, starts


@pytest.fixture(scope="module")
def decoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray], list[int]]:
    """FP32, a candidate that answers otherwise only once END is fed back (after the sequence ended), the rows."""
    folder, w = tmp_path_factory.mktemp("seq"), weights()
    arrays, starts = greedy_sequences(w)
    moved = {**w, "E": w["E"].copy()}
    moved["E"][END] = np.random.default_rng(2).normal(0, 3, H)
    return decoder(folder / "fp32.onnx", w), decoder(folder / "cand.onnx", moved), arrays, starts


def rowwise(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return run_model(path, TensorData(dict(arrays)), 64)


def test_sequence_starts_are_read_from_the_data(decoders: tuple[Path, Path, dict, list]) -> None:
    reference, _, arrays, starts = decoders
    expected = rowwise(reference, arrays)
    assert sequence_starts(arrays, expected, PAIRS).tolist() == starts
    order = np.random.default_rng(3).permutation(len(arrays["token"]))  # out of order: no stream, one from row 0
    shuffled = {k: v[order] for k, v in arrays.items()}
    assert sequence_starts(shuffled, rowwise(reference, shuffled), PAIRS).tolist() == [0]
    zeros = {**arrays, "hidden": np.zeros_like(arrays["hidden"])}  # never recorded: one stream, as before
    assert sequence_starts(zeros, rowwise(reference, zeros), PAIRS).tolist() == [0]


def test_the_stream_takes_each_sequences_fresh_state(decoders: tuple[Path, Path, dict, list]) -> None:
    reference, _, arrays, starts = decoders
    expected = rowwise(reference, arrays)
    fed = run_stream(reference, arrays, PAIRS, starts=np.array(starts))
    np.testing.assert_allclose(fed["hidden_out"], expected["hidden_out"], atol=1e-5)
    carried = run_stream(reference, arrays, PAIRS)  # carried across words: apart from FP32 on the data's rows
    assert not np.allclose(carried["hidden_out"], expected["hidden_out"], atol=1e-3)


def test_end_token_is_the_answer_before_each_start_never_fed(decoders: tuple[Path, Path, dict, list]) -> None:
    reference, _, arrays, starts = decoders
    expected = rowwise(reference, arrays)
    feedback = TokenFeedback("logits", "token")
    assert find_end_token(arrays, expected, feedback, np.array(starts)) == END
    assert find_end_token(arrays, expected, feedback, np.array([0])) is None  # one sequence: no end shown
    fed_end = {**arrays, "token": np.where(np.arange(len(arrays["token"])) == 5, END, arrays["token"])}
    assert find_end_token(fed_end, expected, feedback, np.array(starts)) is None  # fed back: a token, no end


def test_verify_runs_sequences_and_rolls_out_to_fp32s_end(decoders: tuple[Path, Path, dict, list]) -> None:
    reference, candidate, arrays, _ = decoders
    budget = DriftBudget(min_top1_agreement=0.99)
    verify = VerifyAgainstReference(reference, TensorData(dict(arrays)), "eval.npz", budget=budget, state_pairs=PAIRS)
    record = verify.measure(candidate)
    loop, roll = record["closed_loop"], record["rollout"]
    assert loop["sequences"] == SEQUENCES and loop["outputs"]["logits"]["top1_agreement"] == 1.0
    assert f"({SEQUENCES} sequences)" in loop["run"]
    # what the candidate answers once END is fed back (after FP32 ended) is read by no user
    assert (roll["starts"], roll["sequence_starts"], roll["end_token"]) == (SEQUENCES, True, END)
    assert roll["steps"] == LONGEST + 8 and roll["sequence_agreement"] == 1.0 and record["holds"]
    (thin,) = [e for e in record["thin_evidence"] if e["metric"] == "sequence_agreement"]  # 60 show no 0.98
    assert thin_evidence_line(thin).startswith(
        f"output 'logits': decoded-sequence agreement 1 over {SEQUENCES} held-out sequences (rolled out) shows only ≥ "
    )
    blind = rollout_record(reference, candidate, arrays, PAIRS, TokenFeedback("logits", "token"), budget)
    assert blind["end_token"] is None and blind["steps"] == 8  # no sequences given: 8 steps from any row, as before
    assert blind["sequence_agreement"] < 0.9  # past FP32's end, what no user reads


def test_refusals_say_the_sequences_and_the_end(decoders: tuple[Path, Path, dict, list]) -> None:
    loop = {"rows": 300, "sequences": SEQUENCES, "violations": [], "outputs": {}, "state": {}}
    line = str(closed_loop_refusal({"closed_loop": loop}))
    assert line.startswith(
        f"INT8 holds row by row but not fed its own state: over 300 consecutive rows in {SEQUENCES} "
    )
    roll = {
        "output": "logits",
        "token_input": "token",
        "pairs": [{"output": "hidden_out", "input": "hidden"}],
        "starts": SEQUENCES,
        "sequence_starts": True,
        "steps": 20,
        "end_token": END,
        "sequence_agreement": 0.9,
        "budget": 0.98,
    }
    line = str(rollout_refusal({"rollout": roll}))
    assert (
        f"(share of {SEQUENCES} sequence starts whose generated tokens match FP32's up to its end token, at most 20 "
        f"steps (ended at FP32's token {END}), each model fed its own argmax as 'token'"
    ) in line
