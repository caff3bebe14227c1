"""A tritonserver that aborted by itself is said to have, with the exception its log names, and linked to a model
process seen stopped just before (session 49: a stub stopped by SIGSTOP for 5 s under load, then resumed, made
Triton 2.51 abort twice — "terminate called after throwing an instance of 'std::length_error'" — and serve said
only "tritonserver killed by SIGABRT", as if something outside had killed it)."""

from __future__ import annotations

import time

from serving.instance_recovery import STOP_BLAMED_S, InstanceRecovery
from serving.model_states import InstanceStop, ModelInstance, aborted_because

# The end of tritonserver 2.51's log in that crash (its stack trace cut).
CRASH_LOG = (
    "I1205 13:36:52.707991 1016 model_lifecycle.cc:839] \"successfully loaded 'digits'\"\n"
    "terminate called after throwing an instance of 'std::length_error'\n"
    "  what():  basic_string::_M_replace_aux\n"
    "Signal (6) received.\n"
    " 0# 0x00005587436BC52D in /x/tritonserver\n"
)


def test_the_exception_a_server_threw_is_read_from_its_log() -> None:
    assert aborted_because(CRASH_LOG) == (
        "terminate called after throwing an instance of 'std::length_error' (basic_string::_M_replace_aux)"
    )
    no_what = "terminate called after throwing an instance of 'boost::interprocess::lock_exception'\nSignal (6)"
    assert aborted_because(CRASH_LOG + no_what) == (
        "terminate called after throwing an instance of 'boost::interprocess::lock_exception'"  # the last one
    )
    assert aborted_because(CRASH_LOG.split("terminate")[0] + "Signal (6) received.\n") is None  # a kill -6 from outside


def test_a_crash_soon_after_a_stopped_model_process_names_it() -> None:
    said: list[str] = []
    recovery = InstanceRecovery(said.append)
    assert recovery.stopped_lately() == ""
    stop = InstanceStop(ModelInstance("digits", "1", "digits_0_0", 1065), "SIGSTOP", 5.0, still=False)
    recovery.last_stop = (time.monotonic() - 3, stop)
    line = recovery.stopped_lately()
    assert line.startswith(
        "; 3 s after model 'digits' instance digits_0_0's process (pid 1065) was seen stopped (SIGSTOP)"
    )
    assert "Triton 2.51's Python backend can crash when a stopped model process resumes" in line
    recovery.last_stop = (time.monotonic() - STOP_BLAMED_S - 1, stop)
    assert recovery.stopped_lately() == ""  # too long ago to be linked
