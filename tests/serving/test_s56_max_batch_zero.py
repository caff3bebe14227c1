"""max_batch_size 0 (no batching, no row limit: a tune winner's "no batching") is a serving setting a deploy keeps, and
a row limit over it is an interface change (session 56). A plain `deploy` over `--max-batch 0` wrote 32 without a
word, and a 100-row request version 1 answered was then refused ("batch-size must be <= 32"); `--max-batch 32` over
0 was not refused either. A 300-character --name said "file name too long" instead of the name rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.config_changes import batch_limit_cut
from serving.config_check import edited_interface_change, interface_change
from serving.deploy import deploy
from serving.model_config import parse_config
from serving.versions import existing_versions

ZERO_TO_32 = "max_batch_size 0 → 32 (requests of more than 32 rows would be refused; was no row limit)"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No rank-1 output (the dense build's argmax label is dims [1] reshaped when batched: an interface change too)."""
    return make_build_dir(tmp_path_factory.mktemp("mb0"), "sequence")


def max_batch(repo: Path) -> int:
    return int(parse_config(repo / "m" / "config.pbtxt").get("max_batch_size", 0) or 0)


def test_a_plain_deploy_keeps_max_batch_0_and_a_row_limit_over_it_is_refused(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    argv = ["deploy", str(build), "--repo", str(repo), "--name", "m"]
    assert main([*argv, "--max-batch", "0"]) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert max_batch(repo) == 0, "a plain deploy wrote 32 over 0"
    assert "note: kept the serving settings of 'm' from its config: --instances 1, --max-batch 0" in (
        capsys.readouterr().out
    )
    before = (repo / "m" / "config.pbtxt").read_bytes()
    assert main([*argv, "--max-batch", "32"]) == 2
    err = capsys.readouterr().err
    assert f"changes the model's interface: {ZERO_TO_32}" in err and "--allow-interface-change" in err
    assert (repo / "m" / "config.pbtxt").read_bytes() == before and existing_versions(repo / "m") == [1, 2]
    assert main([*argv, "--max-batch", "32", "--allow-interface-change"]) == 0
    assert max_batch(repo) == 32 and existing_versions(repo / "m") == [1, 2, 3]


def test_a_batching_flag_over_max_batch_0_without_max_batch_is_refused(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    argv = ["deploy", str(build), "--repo", str(repo), "--name", "m"]
    assert main([*argv, "--max-batch", "0"]) == 0
    assert main([*argv, "--preferred-batch", "8,16"]) == 2
    assert "'m' is served with max_batch_size 0 (no batching)" in capsys.readouterr().err
    assert existing_versions(repo / "m") == [1]


def test_0_to_n_is_a_batch_limit_cut_where_axis_0_takes_any_size(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    served = parse_config(deploy(build, repo, "m", max_batch=0).config_path)
    batched = parse_config(deploy(build, tmp_path / "other", "m", max_batch=32).config_path)
    assert batch_limit_cut(served, batched) == ZERO_TO_32
    assert batch_limit_cut(served, {"max_batch_size": 32}) == ZERO_TO_32, "tune's winner words read the served side"
    assert interface_change(served, batched) == (
        f"changes the model's interface: {ZERO_TO_32}; requests made for the version there now would fail"
    )
    assert interface_change(served, batched, batch_limit=False) is None
    assert batch_limit_cut(served, served) is None and batch_limit_cut(batched, served) is None
    fixed = {**served, "input": [{**t, "dims": ["1", *t["dims"][1:]]} for t in served["input"]]}
    assert batch_limit_cut(fixed, batched) is None, "a fixed axis 0 is a shape, compared by interface_changes"
    with pytest.raises(QuantserveError, match="max_batch_size 0 → 8"):
        deploy(build, repo, "m", max_batch=8)
    assert existing_versions(repo / "m") == [1]


def test_a_hand_edit_of_max_batch_0_to_8_is_refused_by_the_watcher(build: Path, tmp_path: Path) -> None:
    model_dir = deploy(build, tmp_path / "repo", "m", max_batch=0).model_dir
    served = parse_config(model_dir / "config.pbtxt")
    batched = deploy(build, tmp_path / "other", "m", max_batch=8).config_path  # the same config batched, by hand
    (model_dir / "config.pbtxt").write_text(batched.read_text())
    assert int(parse_config(model_dir / "config.pbtxt")["max_batch_size"]) == 8
    change = edited_interface_change(model_dir, served)
    assert change is not None and ZERO_TO_32.replace("32", "8") in change


def test_a_300_character_name_is_refused_by_the_name_rule(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "m"]) == 0
    capsys.readouterr()
    name = "m" * 300
    assert main(["deploy", str(build), "--repo", str(repo), "--name", name]) == 2
    err = capsys.readouterr().err
    assert "use up to 128 letters, digits" in err and "too long" not in err, err
    assert name not in os.listdir(repo)
