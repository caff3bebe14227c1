"""A link in a model folder that leads nowhere fails the model in Triton: deploy, rollback and serve name it first.

Measured (session 54): Triton stats each entry of a model folder, following links, to find its versions. A dangling
link named `7`, `notes` or `.hidden` beside version 1 failed the model ("Poll failed for model directory 'm': failed
to stat file …/m/7"), yet `deploy` wrote version 4 beside it and said nothing; serve then failed with Triton's words.
A dangling link one level deeper, inside a version folder, is only logged by Triton: the model loads.
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
from serving.repository import prepare_repository
from serving.server import ServerOptions
from serving.supervisor import Supervisor
from serving.version_folders import broken_links
from serving.versions import existing_versions, rollback


def said(*links: tuple[str, str]) -> str:
    which, end = ("a link that leads", "it") if len(links) == 1 else ("links that lead", "them")
    named = ", ".join(f"'{name}' → '{target}'" for name, target in links)
    return (
        f"has {which} nowhere, {named} (tritonserver reads each entry of a model folder and fails the model on one "
        f"it cannot read): remove or mend {end}"
    )


def test_deploy_and_rollback_refuse_a_model_folder_with_a_link_leading_nowhere_and_write_nothing(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "dense", prune=False)
    config = (repo / "dense" / "config.pbtxt").read_text()
    (repo / "dense" / "7").symlink_to(tmp_path / "gone")
    (repo / "dense" / ".notes").symlink_to("nowhere")
    for act in (lambda: deploy(dense_build, repo, "dense"), lambda: rollback(repo, "dense")):
        with pytest.raises(QuantserveError) as raised:
            act()
        assert str(raised.value) == f"{repo / 'dense'}: " + said((".notes", "nowhere"), ("7", str(tmp_path / "gone")))
    assert existing_versions(repo / "dense") == [1, 2]
    assert (repo / "dense" / "config.pbtxt").read_text() == config
    assert [p.name for p in (repo / "dense").iterdir() if p.name.startswith(".deploy-")] == []


def test_serve_names_it_before_tritonserver_starts_and_a_restart_leaves_that_model_out(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "other")
    (repo / "other" / "notes").symlink_to("missing.txt")
    assert main(serve_args(repo, free_port_factory)) == 2
    reason = said(("notes", "missing.txt"))
    assert capsys.readouterr().err == f"quantserve: error: {repo / 'other'}: model 'other' {reason}\n"
    assert prepare_repository(repo, strict=False) == {"other": reason}
    assert (repo / "other" / "notes").is_symlink()  # nothing of it removed


def test_a_running_serve_does_not_reload_a_model_whose_folder_gained_one(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / "2").symlink_to("/no/such/build")
    lines: list[str] = []
    supervisor = Supervisor(ServerOptions.on_free_ports(repo, model_control="explicit"), log=lines.append)
    control = FakeControl([1])
    supervisor._load("dense", control, None)
    assert control.loads == 0
    reason = said(("2", "/no/such/build"))
    assert lines == [f"model 'dense' not reloaded, versions [1] keep serving: {repo / 'dense'} {reason}"]


def test_links_that_lead_somewhere_and_ones_inside_a_version_folder_are_no_concern(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    (repo / "dense" / "notes").symlink_to(dense_build)
    (repo / "dense" / "1" / "stale").symlink_to("nowhere")  # Triton logs it and loads the model
    (repo / "dense" / "loop").symlink_to("loop")
    assert broken_links(repo / "dense") == [("loop", "loop")]
    (repo / "dense" / "loop").unlink()
    assert broken_links(repo / "dense") == []
    deploy(dense_build, repo, "dense", prune=False)
    assert existing_versions(repo / "dense") == [1, 2]
