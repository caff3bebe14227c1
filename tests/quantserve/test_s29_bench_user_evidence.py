"""`quantserve bench` on a user's model (probe pl11): INT8 held-out rows too few to show the drift budget are said
and marked as a drift miss is; a tiny model's multiply-adds read in a unit that shows them; reused builds, and an
earlier bench.json replaced, are said. Builds are manifests written here (no optimize runs): seconds in all."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from quantserve.artifact import Manifest

SHIP = "its rows are timed, but this INT8 build is not one optimize would ship"
# pl11's three.onnx on its 256 request rows: top-1 and id agreement 0.9961 hold 0.99 but cannot show it
THIN = [
    {"output": out, "metric": metric, "value": 0.99609375, "rows": 256, "lower_bound": 0.982681210572317,
     "budget": 0.99, "rows_needed": 722}
    for out, metric in (("logits", "top1_agreement"), ("cls", "id_agreement"))
]  # fmt: skip
SHORT = [{**{k: e[k] for k in ("output", "metric", "budget", "rows")}, "rows_needed": 268} for e in THIN]
THIN_LINE = (
    "output 'logits': top-1 agreement 0.9961 over 256 held-out rows shows only ≥ 0.983 (95 % lower bound), not the "
    "budget's 0.99; about 722 rows would (--heldout) (and 1 more)"
)
THREE_NOTE = f"INT8's held-out rows cannot show its drift budget ({THIN_LINE}): {SHIP}"


def write_build(folder: Path, precision: str, **verification: Any) -> Path:
    """A build folder as optimize leaves it, as far as bench reads one: its manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"holds": True, "violations": [], "thin_evidence": [], "evidence_short": [], "one_answer": []}
    Manifest(f"three_{precision}", [], [], precision, verification={**record, **verification}).save(folder)
    return folder


def reused(folder: Path) -> dict[str, Any]:
    """The record of a user's INT8 build (`bench_user.int8_or_refusal`), reused from `folder`."""
    from quantserve.cli.bench_build import build, with_evidence

    options = SimpleNamespace(out_dir=folder, precision="int8")
    return with_evidence(build("three", options, False, print)[1], "--heldout")


def test_too_few_held_out_rows_are_said_as_a_drift_miss_is(tmp_path: Path) -> None:
    """Before, drift_holds was true and no line said it, though optimize refuses that build."""
    from quantserve.cli.bench_results import int8_budget_note

    record = reused(write_build(tmp_path / "int8", "int8", thin_evidence=THIN, evidence_short=SHORT))
    assert record["drift_holds"] is None and record["evidence_line"] == THIN_LINE
    assert int8_budget_note(record) == THREE_NOTE


def test_every_row_agreeing_too_few_and_one_answer_name_optimizes_reason(tmp_path: Path) -> None:
    from quantserve.cli.bench_results import int8_budget_note

    short = reused(write_build(tmp_path / "short", "int8", evidence_short=SHORT))
    assert int8_budget_note(short) == (
        "INT8's held-out rows cannot show its drift budget (output 'logits': top-1 agreement ≥ 0.99 needs at least "
        f"268 held-out rows (95 % lower bound, every row agreeing), 256 given (output 'cls', short too)): {SHIP}"
    )
    one = [{"output": "p", "class": 0, "classes": 10, "rows": 300}]
    answer = reused(write_build(tmp_path / "one", "int8", one_answer=one))
    assert int8_budget_note(answer) == (
        "INT8's held-out rows cannot show its drift budget (output 'p' (classification): FP32 answers class 0 on all "
        f"300 of them, so top-1 agreement says nothing of its other 9 classes): {SHIP}"
    )


def test_what_optimize_ships_with_a_note_stays_held_and_unmarked(tmp_path: Path) -> None:
    """Thin evidence on rows enough for full agreement: optimize ships it with a note; so does the bench. A drift
    miss stays a miss (a built-in model's builds are not judged: test_a_builtin_models_reused_builds_are_said)."""
    from quantserve.cli.bench_results import int8_budget_note

    thin = reused(write_build(tmp_path / "thin", "int8", thin_evidence=THIN))
    assert thin["drift_holds"] is True and thin["evidence_note"] == THIN_LINE and int8_budget_note(thin) is None
    missed = write_build(tmp_path / "missed", "int8", holds=False, evidence_short=SHORT)
    assert reused(missed)["drift_holds"] is False and "evidence_line" not in reused(missed)


def test_a_tiny_models_multiply_adds_read_in_a_unit_that_shows_them() -> None:
    """pl11: a 1280-MAC model read "multiply-adds a sample: 0.00 M", "646.2/s × 0.00 M = 0.83 M/s"."""
    from quantserve.cli.bench_peak import PeakRecord, amount, compute_record

    assert [amount(n) for n in (1.814e9, 4.017e7, 2.7e5, 1280, 640, 0)] == [
        "1.814 G", "40.17 M", "0.27 M", "1.28 k", "640", "0"
    ]  # fmt: skip
    peak = PeakRecord("MatMulInteger", 1024**3, 0.02976, 2)
    lines = compute_record({"MatMul": 1280}, {"served INT8 tuned (row 5)": 646.2}, peak)["arithmetic"]
    assert lines[0] == "multiply-adds a sample: 1.28 k (MatMul 1.28 k)"
    assert lines[2].startswith("served INT8 tuned (row 5): 646.2/s × 1.28 k = 0.83 M/s = ")


def write_user_model(tmp: Path) -> tuple[Path, Path]:
    from tests.quantserve.test_bench_user import write_mlp_onnx, write_requests

    return write_mlp_onnx(tmp / "three.onnx"), write_requests(tmp / "requests.npz", "x")


def test_a_users_reused_builds_are_said_with_why_and_the_thin_evidence_marked(tmp_path: Path) -> None:
    """A second `bench --model` over the same files: no optimize line, and before, no line at all."""
    from quantserve.cli.bench import BenchSettings, prepare
    from quantserve.cli.bench_user import UserModelSpec, fingerprint, load_user_model, mark_built

    model, data = write_user_model(tmp_path)
    spec, root = UserModelSpec(str(model), data), tmp_path / "build" / "user" / "three"
    write_build(root / "fp32", "fp32")
    write_build(root / "int8", "int8", thin_evidence=THIN, evidence_short=SHORT)
    mark_built(root, fingerprint(spec, load_user_model(spec)))
    said: list[str] = []
    settings = BenchSettings.quick_run(models=("three",), user=spec, build=tmp_path / "build")
    prepared = prepare("three", settings, said.append)
    why = "made from the same model and data files: their sha256 match source.json"
    assert said[1:] == [
        f"three: FP32 and INT8 builds reused from {root} ({why}; --rebuild optimizes afresh)",
        f"three: {THREE_NOTE}",
    ]
    assert prepared.records["int8"]["drift_holds"] is None


def test_a_builtin_models_reused_builds_are_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import examples.bench_models
    from quantserve.cli.bench import BenchSettings, prepare

    root = tmp_path / "build" / "tiny"
    for precision in ("fp32", "int8"):  # the quick model's 256 held-out rows: not judged for evidence here
        write_build(root / precision, precision, thin_evidence=THIN, evidence_short=SHORT)
    folder = root / "model"
    model = SimpleNamespace(
        name="tiny", program=folder / "model.pt2", path=lambda file: folder / file, input_names=("x",),
        output_names=("logits",), model_type=None, encoder_shape=(0, 0), trained_here=False,
    )  # fmt: skip
    monkeypatch.setattr(examples.bench_models, "prepare", lambda name, where: model)
    said: list[str] = []
    prepare("tiny", BenchSettings.quick_run(build=tmp_path / "build"), said.append)
    assert said[1:] == [
        f"tiny: FP32 and INT8 builds reused from {root} (made from the model read back from {folder}; "
        "--rebuild optimizes afresh)"
    ]


def test_reuse_line_names_only_what_was_reused() -> None:
    from quantserve.cli.bench_build import reuse_line

    fresh = {"fp32": {"path": "b/fp32", "reused": False}, "int8": {"path": "b/int8", "reused": False}}
    assert reuse_line(fresh, "why") is None
    one = {**fresh, "fp32": {"path": "b/fp32", "reused": True}}
    assert reuse_line(one, "why") == "FP32 build reused from b/fp32 (why; --rebuild optimizes afresh)"


class Stop(Exception):
    pass


def test_an_earlier_bench_json_replaced_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import quantserve.cli.bench as bench
    import quantserve.cli.bench_peak as peak

    def stop(*args: Any) -> None:
        raise Stop

    monkeypatch.setattr(peak, "PeakTracker", lambda *args: SimpleNamespace(measure=lambda: None, best=lambda p: None))
    monkeypatch.setattr(bench, "giga", lambda record: "1.0")
    monkeypatch.setattr(bench, "bench_model", stop)
    settings = bench.BenchSettings.quick_run(out=tmp_path / "out")
    for earlier in (False, True):
        said: list[str] = []
        if earlier:
            (tmp_path / "out").mkdir()
            (tmp_path / "out" / "bench.json").write_text("{}")
        with pytest.raises(Stop):
            bench.run_bench(settings, said.append)
        replaced = f"{tmp_path / 'out' / 'bench.json'} holds an earlier run's results: this run replaces them"
        assert (replaced in said) is earlier
