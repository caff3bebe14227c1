"""Served evaluation refuses labels that cannot score the output in one line, and scores string outputs (no server)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator, variant_scores
from loadtest.variant_scores import score_variant
from quantserve.cli.commands import evaluate as evaluate_command
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

RNG = np.random.default_rng(3)
LOGITS = RNG.normal(size=(20, 10)) * 5


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            np.eye(20, 10, dtype=np.int64),  # one-hot: broadcast error in metrics.accuracy before
            "held.npz: array 'labels' has shape (20, 10); scoring the class scores (20, 10) of model 'int8' needs "
            "one class id per sample, shape (20,) (one-hot labels: save their argmax)",
        ),
        (
            np.r_[np.zeros(18, np.int64), 100, 10],  # IndexError in metrics.one_vs_rest before
            "held.npz: array 'labels' has 2 class id(s) outside 0..9, the 10 classes model 'int8' scores "
            "(first: 100 in row 18)",
        ),
        (np.full(20, 0.0), "held.npz: array 'labels' has dtype float64; labels must be integer class ids (e.g. int64)"),
    ],
)
def test_labels_that_cannot_score_the_class_scores_are_one_line(labels: np.ndarray, message: str) -> None:
    with pytest.raises(QuantserveError) as error:
        score_variant("int8", LOGITS, LOGITS, labels, "held.npz")
    assert str(error.value) == message


def _evaluate_args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quantserve")
    evaluate_command.register(parser.add_subparsers())
    held = tmp_path / "held.npz"
    TensorData({"x": np.zeros((20, 4), np.float32)}, np.arange(20, dtype=np.int64)).save(held)
    base = ["evaluate", "--models", "a,b", "--reference", "a", "--data", str(held), "--out", str(tmp_path / "o")]
    return parser.parse_args([*base, *extra])


def test_labels_beyond_the_served_classes_stop_evaluate_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids the output has no class for are known only once it is served: refused there, nothing written."""
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: {
            "logits": LOGITS
        },
    )
    args = _evaluate_args(tmp_path)
    with pytest.raises(QuantserveError) as error:
        args.func(args)
    assert str(error.value) == (
        f"{tmp_path / 'held.npz'}: array 'labels' has 10 class id(s) outside 0..9, the 10 classes model 'a' "
        "scores (first: 10 in row 10)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--load-duration", "0"], "--load-duration must be positive, got 0 s (leave it out for no load)"),
        (["--load-duration", "5x"], "--load-duration: duration '5x' is not like 60s, 2m or 1h30m"),
        (["--load-duration", "5s", "--load-users", "0"], "--load-users must be at least 1, got 0"),
    ],
)
def test_side_by_side_load_flags_are_checked_before_the_accuracy_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], message: str
) -> None:
    """`--load-duration 0` ran the whole accuracy pass, then failed naming `--duration`."""

    def served(*_: object) -> None:
        raise AssertionError("the accuracy pass ran before the load flags were checked")

    monkeypatch.setattr(evaluator, "served_outputs", served)
    args = _evaluate_args(tmp_path, *flags)
    with pytest.raises(QuantserveError) as error:
        args.func(args)
    assert str(error.value) == message


def test_string_outputs_are_scored_by_agreement() -> None:
    """A BYTES output (object array of bytes) has no numeric distance: abs_difference raised ValueError on it."""
    reference = np.array([[b"a"], [b"bb"], [b"c"], [b"d"]], dtype=object)
    candidate = reference.copy()
    candidate[2, 0] = b"x"
    scored = score_variant("int8", reference, candidate, None)
    assert scored.top1_agreement == 0.75 and scored.mean_abs_diff == 0.25 and scored.max_abs_diff == 1.0
    assert scored.cosine_mean is None and scored.accuracy is None


def test_every_output_kind_has_a_headline_rank() -> None:
    """evaluate picks its headline output by kind: a kind optimize can infer that the ranking lacks crashed it
    (`soft_mask`, added to optimize, made `_headline_output` raise `tuple.index(x): x not in tuple`)."""
    from optimizer.output_kinds import OUTPUT_KINDS

    assert set(OUTPUT_KINDS) <= set(variant_scores.HEADLINE_KINDS), set(OUTPUT_KINDS) - set(
        variant_scores.HEADLINE_KINDS
    )
