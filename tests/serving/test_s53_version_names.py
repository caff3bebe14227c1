"""A version folder's name is a version where Triton reads it as one: ASCII digits, no leading zero, 1 … 2**63−1.

Measured (session 53): Triton reads a folder's name with std::stoll; `99999999999999999999` threw out_of_range,
uncaught, and tritonserver aborted (SIGABRT), taking every model down (serve blamed another model, restarted it 5
times, gave up), and a deploy created such a folder from a huge highest-version record. `'²'.isdigit()` is True but
`int('²')` raises: deploy, rollback and serve ended in a traceback; `'٣'` counted as version 3, which Triton ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_deploy_checks import serve_args
from test_edited_config import FakeControl

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_files import model_fingerprints
from serving.model_version import version_precision
from serving.repository import prepare_repository
from serving.repository_lock import ROLLED_BACK_RECORD, VERSION_RECORD
from serving.server import ServerOptions
from serving.supervisor import Supervisor
from serving.versions import existing_versions, next_version, rollback, rolled_back_from

LARGEST = 2**63 - 1
TOO_BIG = "99999999999999999999"
ABORTS = (
    f"has version folder '{TOO_BIG}' above Triton's largest version number {LARGEST} "
    "(tritonserver would abort, taking every model down); move it out of the model folder"
)


def test_the_one_test_of_a_version_name_is_tritons() -> None:
    from serving.model_config import is_version_name

    assert [is_version_name(n) for n in ("1", "42", str(LARGEST))] == [True] * 3
    assert not [n for n in (str(LARGEST + 1), TOO_BIG, "0", "01", "²", "٣", "+1", " 1", "1 ", "") if is_version_name(n)]


def test_serve_names_a_version_folder_too_big_for_triton_in_one_line_before_it_starts(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / TOO_BIG).mkdir()
    assert main(serve_args(repo, free_port_factory)) == 2
    assert capsys.readouterr().err == f"quantserve: error: {repo / 'dense'}: model 'dense' {ABORTS}\n"
    assert (repo / "dense" / TOO_BIG).is_dir()  # nothing of it removed


def test_a_restart_skips_such_a_folder_under_explicit_control_and_refuses_it_where_triton_loads_every_folder(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "other")
    (repo / "other" / TOO_BIG).mkdir()
    assert prepare_repository(repo, strict=False) == {"other": ABORTS}
    with pytest.raises(QuantserveError) as raised:
        prepare_repository(repo, strict=False, loads_every_folder=True)
    assert str(raised.value) == f"{repo / 'other'}: model 'other' {ABORTS}"
    assert "other" in model_fingerprints(repo)  # its arrival is a change the watcher looks at (and refuses to load)
    assert TOO_BIG in model_fingerprints(repo)["other"].version_names


def test_a_running_serve_does_not_load_a_model_whose_folder_gained_one(dense_build: Path, tmp_path: Path) -> None:
    """Triton would abort at the load, and every model with it: the versions served keep serving, named."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / TOO_BIG).mkdir()
    lines: list[str] = []
    supervisor = Supervisor(ServerOptions.on_free_ports(repo, model_control="explicit"), log=lines.append)
    control = FakeControl([1])
    supervisor._load("dense", control, None)
    assert control.loads == 0
    assert lines == [f"model 'dense' not reloaded, versions [1] keep serving: {repo / 'dense'} {ABORTS}"]


def test_deploy_and_rollback_refuse_a_model_folder_with_a_version_triton_cannot_read(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "dense", prune=False)
    (repo / "dense" / TOO_BIG).mkdir()
    with pytest.raises(QuantserveError) as raised:
        deploy(dense_build, repo, "dense")
    assert str(raised.value) == f"{repo / 'dense'}: {ABORTS}"
    with pytest.raises(QuantserveError) as raised:
        rollback(repo, "dense")
    assert str(raised.value) == f"{repo / 'dense'}: {ABORTS}"
    assert sorted(p.name for p in (repo / "dense").iterdir() if not p.name.startswith(".")) == [
        "1",
        "2",
        TOO_BIG,
        "config.pbtxt",
    ]


@pytest.mark.parametrize("recorded", [TOO_BIG, str(LARGEST + 1), "0"])
def test_a_highest_version_record_triton_cannot_read_is_refused_naming_the_file(
    dense_build: Path, tmp_path: Path, recorded: str
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / VERSION_RECORD).write_text(f"{recorded}\n")
    with pytest.raises(QuantserveError) as raised:
        deploy(dense_build, repo, "dense")
    assert str(raised.value) == (
        f"{repo / 'dense' / VERSION_RECORD}: records version {recorded} as issued, not a version Triton can read "
        f"(1 … {LARGEST}); fix or remove the file (the version folders then decide)"
    )
    assert existing_versions(repo / "dense") == [1]
    assert [p.name for p in (repo / "dense").iterdir() if p.name.startswith(".deploy-")] == []


def test_no_version_is_issued_above_the_largest_triton_reads(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / VERSION_RECORD).write_text(f"{LARGEST - 1}\n")
    assert next_version(repo / "dense") == LARGEST
    (repo / "dense" / VERSION_RECORD).write_text(f"{LARGEST}\n")
    with pytest.raises(QuantserveError, match=f"version {LARGEST}, the largest Triton can read, was issued"):
        deploy(dense_build, repo, "dense")
    assert existing_versions(repo / "dense") == [1]


def test_folders_named_with_non_ascii_digits_are_not_versions(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Triton ignores them (stoll reads no digit); quantserve did not: int('²') raised, '٣' was version 3."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / "²").mkdir()
    (repo / "dense" / "٣").mkdir()
    assert existing_versions(repo / "dense") == [1]
    assert prepare_repository(repo) == {}
    assert model_fingerprints(repo)["dense"].version_names == ("1",)
    assert deploy(dense_build, repo, "dense", prune=False).version == 2
    assert rollback(repo, "dense") == 1
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--to", "٣"]) == 2
    assert "invalid model version '٣'" in capsys.readouterr().err


def test_records_and_served_versions_with_non_ascii_digits_are_no_versions(tmp_path: Path) -> None:
    (tmp_path / ROLLED_BACK_RECORD).write_text("2\n²\n٣\n")
    assert rolled_back_from(tmp_path) == [2]
    config = {"parameters": {"quantserve_version_precisions": {"string_value": "1=fp32"}}}
    assert version_precision(config, "²", ["1"]) is None
