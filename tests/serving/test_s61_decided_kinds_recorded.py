"""deploy records the kinds a build's labels decided beside the kinds it was told (session 61): a per-position
softmax labelled a class per position, judged per position at optimize (verification `labels_decided`), is written
as its own config parameter, so evaluate on the same rows without those labels judges it alike; the typed kinds'
parameter is unchanged."""

from __future__ import annotations

from quantserve.artifact import TYPED_KINDS, Manifest
from serving.deploy_config import model_parameters
from serving.kinds_parameter import (
    KINDS_PARAMETER,
    LABELLED_KINDS_PARAMETER,
    labelled_kinds_parameter,
    recorded_kinds,
    recorded_labelled_kinds,
)


def _served(parameters: dict[str, str]) -> dict[str, object]:
    """The served config (Triton's JSON) of these parameters."""
    return {"parameters": {k: {"string_value": v} for k, v in parameters.items()}}


def test_the_kinds_labels_decided_are_their_own_parameter_beside_the_typed_ones() -> None:
    manifest = Manifest("m", [], [], precision="int8")
    manifest.verification = {"labels_decided": {"stages": "token_classification"}}
    manifest.extra[TYPED_KINDS] = {"state": "embedding"}
    parameters = model_parameters(manifest, None)
    assert parameters[LABELLED_KINDS_PARAMETER] == '{"stages":"token_classification"}'
    assert recorded_labelled_kinds(_served(parameters)) == {"stages": "token_classification"}
    assert recorded_kinds(_served(parameters)) == {"state": "embedding"}, "typed kinds unchanged"
    assert KINDS_PARAMETER in parameters


def test_none_recorded_where_the_labels_decided_nothing_or_the_record_is_garbled() -> None:
    assert labelled_kinds_parameter(None) == {} and labelled_kinds_parameter({"outputs": {}}) == {}
    assert labelled_kinds_parameter({"labels_decided": {"stages": "per_epoch"}}) == {}  # no kind of quantserve
    assert LABELLED_KINDS_PARAMETER not in model_parameters(Manifest("m", [], []), None)
    assert recorded_labelled_kinds({}) == {}  # an older deploy
    assert recorded_labelled_kinds({"parameters": {LABELLED_KINDS_PARAMETER: {"string_value": "{"}}}) == {}
