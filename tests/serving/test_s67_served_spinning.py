"""The served ONNX Runtime session does not spin between calls unless the config asks (session 67): ORT's default
spinning took a core from Triton's gRPC threads and the load generator on a shared machine, 1.65x fewer requests."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from optimizer.python_backend.model import session_options

SPIN = "session.intra_op.allow_spinning"


def test_served_session_does_not_spin_by_default() -> None:
    options = session_options(ort, {})
    assert options.get_session_config_entry(SPIN) == "0"
    assert options.inter_op_num_threads == 1


def test_config_parameters_set_spinning_and_threads() -> None:
    options = session_options(ort, {"allow_spinning": "1", "intra_op_threads": "3"})
    assert options.get_session_config_entry(SPIN) == "1"
    assert options.intra_op_num_threads == 3


def test_a_bad_spinning_value_is_named() -> None:
    with pytest.raises(ValueError, match='allow_spinning must be "0" or "1", got \'yes\''):
        session_options(ort, {"allow_spinning": "yes"})
