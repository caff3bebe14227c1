"""A factory's options take input_names as torch.onnx.export does (session 43): refused as unknown while
output_names was taken, it trapped a factory written after an export call."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.source import load_source
from quantserve.errors import QuantserveError

FACTORIES = """
import torch


class Two(torch.nn.Module):
    def forward(self, a, b):
        return a * 2 + b


def named():
    return Two(), (torch.ones(1, 3), torch.ones(1, 3)), {"input_names": ["mfcc", "bias"], "output_names": ["y"]}


def too_few():
    return Two(), (torch.ones(1, 3), torch.ones(1, 3)), {"input_names": ["mfcc"]}


def not_a_list():
    return Two(), (torch.ones(1, 3), torch.ones(1, 3)), {"input_names": "mfcc"}
"""


@pytest.fixture
def factories(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "s43_name_factories.py").write_text(FACTORIES)
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("s43_name_factories", None)


def test_a_factorys_input_names_name_its_inputs_in_order(factories: None) -> None:
    source = load_source("s43_name_factories:named")
    assert source.input_names == ["mfcc", "bias"]
    assert source.options == {"output_names": ["y"]}


@pytest.mark.parametrize(
    ("factory", "said"),
    [("too_few", r"1 input names given for 2 inputs"), ("not_a_list", r"input_names must be a list of names")],
)
def test_input_names_that_do_not_fit_are_refused_in_one_line(factories: None, factory: str, said: str) -> None:
    with pytest.raises(QuantserveError, match=said):
        load_source(f"s43_name_factories:{factory}")
