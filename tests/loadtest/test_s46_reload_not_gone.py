"""A model serve reloads after its instance died is not gone (session 46: a run that asked once while serve unloaded
and loaded the same version was cut short at 8.2 of 15 s, blamed on "a deploy or rollback", though version 1 served
again 2.3 s later)."""

from __future__ import annotations

from collections.abc import Callable

from tritonclient.utils import InferenceServerException

from loadtest.model_gone import RELOADING, SETTLE_S, ServedCheck
from serving.call_failures import reloading

NOT_SERVED = "Request for unknown model: 'm' has no available versions"


def _failure() -> InferenceServerException:
    return InferenceServerException(NOT_SERVED, status="StatusCode.UNAVAILABLE")


def _answers(*said: bool | str) -> Callable[[], bool | str]:
    left = list(said)
    return lambda: left.pop(0)


def test_a_model_reloading_then_ready_again_is_not_gone() -> None:
    check = ServedCheck()
    ask = _answers(False, RELOADING, RELOADING, RELOADING, True)
    for k in range(5):  # unloaded a moment, then loading for 3 s, then ready: never gone
        assert not check.judge(_failure(), 100.0 + k, ("m", ""), ask, now=10.0 + k)
    assert check.to_tell() is None
    assert check.unready is None  # ready again: a later "no" starts its own count


def test_a_model_that_stays_unavailable_is_gone_from_its_first_no() -> None:
    check = ServedCheck()
    assert not check.judge(_failure(), 100.0, ("m", "1"), lambda: False, now=10.0)
    assert not check.judge(_failure(), 100.5, ("m", "1"), lambda: False, now=10.0 + SETTLE_S / 2)
    assert check.judge(_failure(), 101.2, ("m", "1"), lambda: False, now=10.0 + SETTLE_S)
    told = check.to_tell()
    assert told is not None and told["at"] == 100.0  # the figures end where it first failed


def test_the_index_says_reloading_for_the_model_or_the_version_named() -> None:
    index = [{"name": "m", "version": "1", "state": "LOADING"}, {"name": "other", "version": "2", "state": "READY"}]
    assert reloading(index, ("m", ""))
    assert reloading(index, ("m", "1"))
    assert not reloading(index, ("m", "2"))  # a rollback's version 1 loading is not version 2 coming back
    assert not reloading([{"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"}], ("m", ""))
    assert reloading([{"name": "m", "version": "1", "state": "UNLOADING"}], ("m", "1"))
