"""Two builds told the same length input in two forms (`n_epochs`, `stage_logprobs=n_epochs`) are refused by evaluate
in one line, which named only `--length-input NAME or none` while the OUTPUT=NAME form is the one that reads both as
built (session 61, GSSC's sleep stager)."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.served_graph import told_length_input
from quantserve.errors import QuantserveError
from serving.length_parameter import length_parameter


def _told(name: str) -> dict:
    return {"parameters": {k: {"string_value": v} for k, v in length_parameter(name).items()}}


def test_two_forms_of_one_length_input_name_both_forms_of_the_flag() -> None:
    inputs = {"eeg": np.zeros((4, 10, 8), np.float32), "n_epochs": np.array([3, 4, 10, 5])}
    configs = {"gssc_fp32": _told("n_epochs"), "gssc_oe": _told("stage_logprobs=n_epochs")}
    with pytest.raises(QuantserveError) as raised:
        told_length_input(configs, None, inputs)
    assert str(raised.value) == (
        "model 'gssc_fp32' was built with --length-input n_epochs, model 'gssc_oe' with --length-input "
        "stage_logprobs=n_epochs: pass --length-input NAME (OUTPUT=NAME[,OUTPUT=NAME…] for an output's own) or none "
        "to say which input counts each row's real tokens"
    )
