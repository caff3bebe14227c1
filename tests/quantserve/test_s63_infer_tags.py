"""`infer` prints a tagger's tags on at its threshold, not an argmax (session 63: musicnn's MTT tagger printed
"argmax: 10 10 10 …" where its rows had no tag at 0.5, row 0's highest score 0.192)."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.graph_words import GraphWords, words_record
from quantserve.cli.commands.infer import summary, summary_record, tag_cuts
from serving.gates_parameter import gates_parameter
from serving.graph_parameter import graph_parameter
from serving.kinds_parameter import kinds_parameter


def _config(*parameters: dict[str, str]) -> dict[str, Any]:
    """A served config (Triton's JSON) with deploy's parameters."""
    return {"parameters": {k: {"string_value": v} for p in parameters for k, v in p.items()}}


def _tags(rows: int = 60) -> np.ndarray:
    """Sigmoid scores over 12 tags, most plainly off, three tags on in most rows; row 2 with tags 3 and 7 on, rows 0,
    1, 3, 4 with none at 0.5 (row 0's top score 0.3, tag 10)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(-5.0, 1.0, (rows, 12))
    for row in range(5, rows):
        logits[row, rng.choice(12, size=3, replace=False)] = [4.0, 2.0, 1.0]
    scores = 1 / (1 + np.exp(-logits))
    scores[0, 10], scores[2, [3, 7]] = 0.3, 0.9
    return scores.astype(np.float32)


def test_a_tagger_the_build_records_prints_its_tags_on_at_the_threshold() -> None:
    scores = _tags()
    sigmoid = _config(graph_parameter(words_record(GraphWords(frozenset({"tags"})))))
    cuts = tag_cuts({"tags": scores}, [], None, sigmoid)
    assert cuts == {"tags": (0.5, 0.5)}
    said = summary({"tags": scores}, None, [], cuts)
    assert "argmax" not in said
    assert "tags on at 0.5: none none 3,7 none none" in said
    record = summary_record({"tags": scores}, None, [], cuts)
    assert "argmax" not in record and record["tags_on"][:3] == [[], [], [3, 7]] and record["tag_threshold"] == 0.5
    probs = np.random.default_rng(1).dirichlet(np.full(12, 0.1), 60).astype(np.float32)  # a classifier's softmax
    assert tag_cuts({"probs": probs}, [], None, _config()) == {}  # its argmax, as before
    assert "argmax: 10 " in summary({"tags": scores}, None, [], {})


def test_typed_logits_are_cut_at_the_thresholds_logit_and_a_given_threshold_is_used() -> None:
    logits = np.log(_tags() / (1 - _tags()))
    typed = _config(kinds_parameter({"tags": "multilabel"}), gates_parameter({"label_threshold": 0.25}))
    cuts = tag_cuts({"tags": logits}, [], None, typed)
    assert list(cuts) == ["tags"] and cuts["tags"][0] == 0.25 and abs(cuts["tags"][1] - np.log(1 / 3)) < 1e-9
    said = summary({"tags": logits}, None, [], cuts)
    assert "tags on at 0.25 (logit -1.1): 10 none 3,7 none none" in said  # 0.3 is on at 0.25
