"""A tritonserver that dies while starting names the model it was bringing up (session 46: a model whose initialize
crashed the server took every model down on each restart, and serve gave up naming none)."""

from __future__ import annotations

from serving.model_states import crash_suspect

# the tail of a start that a model's initialize crashed (SIGSEGV), as serve's error carried it (Triton 2.51)
CRASHED = """tritonserver exited with code -11 while starting
  I1205 02:22:27.891640 13464 model_lifecycle.cc:472] "loading: bad_model:1"
  I1205 02:22:27.893788 13464 model_lifecycle.cc:472] "loading: good:1"
  I1205 02:22:29.139179 13464 python_be.cc:2249] "TRITONBACKEND_ModelInstanceInitialize: good_0_0 (CPU device 0)"
  I1205 02:22:29.183401 13464 python_be.cc:2249] "TRITONBACKEND_ModelInstanceInitialize: bad_model_0_0 (CPU device 0)"
"""


def test_the_model_whose_instance_was_initializing_last_is_named() -> None:
    said = crash_suspect(CRASHED)
    assert "model 'bad_model'" in said
    assert "'good'" not in said
    assert "remove it from the repository or roll it back" in said


def test_a_model_loaded_whole_is_not_named() -> None:
    tail = CRASHED.replace(
        '"TRITONBACKEND_ModelInstanceInitialize: bad_model_0_0 (CPU device 0)"',
        "successfully loaded 'bad_model' version 1",
    )
    assert "model 'good'" in crash_suspect(tail)  # begun, its instance initializing, never loaded
    unstarted = "\n".join(line for line in tail.splitlines() if "good_0_0" not in line)
    assert crash_suspect(unstarted) == "; it was loading 'good'"  # begun, never ended, no instance yet
    assert crash_suspect("tritonserver exited with code 1 while starting\n  error: no such file") == ""
