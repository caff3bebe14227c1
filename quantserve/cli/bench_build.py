"""The FP32 and INT8 builds `quantserve bench` times: optimize's options for a built-in model, one build (reused
where its folder holds a complete one of the same model), and the prepared model with its builds.

Both bench sources use them: the built-in models (quantserve.cli.bench) and a user's own model
(quantserve.cli.bench_user). Every build keeps a drift miss (keep_failing) and skips optimize's own
timing: the bench measures speed itself, and records whether the build held its budget. keep_failing
also keeps an INT8 build whose held-out rows are too few to show the budget, which optimize refuses: for
a user's model that is recorded and said as a miss is (`with_evidence`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Say = Callable[[str], None]


@dataclass
class PreparedModel:
    """A model with its builds: the eager module, the two ONNX files, and where everything lies."""

    model: Any  # examples.bench_models.BenchModel, or bench_user.UserBenchModel
    builds: dict[str, Path]  # "fp32"/"int8" -> optimize build folder
    records: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # a user's model: what was given (bench_user.source_record)


def builtin_options(model: Any, precision: str, out: Path) -> Any:
    """optimize's options for a built-in bench model (examples.bench_models.BenchModel)."""
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings
    from optimizer.transformer import TransformerSettings

    transformer = TransformerSettings(model.model_type, *model.encoder_shape) if model.model_type else None
    return OptimizeOptions(
        model.program, model.path("calib.npz"), precision, "embedded", out,
        eval_path=model.path("heldout.npz"), name=f"{model.name}_{precision}",
        input_names=list(model.input_names), output_names=list(model.output_names), transformer=transformer,
        keep_failing=True,  # the bench measures speed: a drift over budget is recorded, not refused
        speed=SpeedSettings(enabled=False),  # the bench times INT8 against FP32 itself
    )  # fmt: skip


def build(name: str, options: Any, fresh: bool, say: Say) -> tuple[Path, dict[str, Any]]:
    """Optimize with `options` (reusing a complete build in its folder unless `fresh`); the build's record."""
    from optimizer.pipeline import optimize
    from quantserve.artifact import Manifest

    out = Path(options.out_dir)
    reused = not fresh and (out / "manifest.json").is_file()
    if not reused:
        say(f"{name}: optimize {options.precision} → {out}")
        optimize(options)
    manifest = Manifest.load(out)
    verification = manifest.verification or {}
    calibrate = next((s for s in manifest.stages if s.get("stage") == "calibrate"), {})
    record = {"path": str(out), "drift_holds": verification.get("holds"), "reused": reused}
    record.update({k: calibrate[k] for k in ("scheme", "kept_fp32", "int8_mac_share") if k in calibrate})
    record.update(search_speed_record(calibrate))
    violations = verification.get("violations") or []
    if violations:  # the first miss, as optimize's refusal would have named it
        record["drift_line"] = violations[0].get("line", "")
    return out, record


def search_speed_record(calibrate: dict[str, Any]) -> dict[str, Any]:
    """What the INT8 search timed (the FP32/INT8 pairs its speed gate times, `optimizer.int8_search`): the chosen
    scheme's speedup as `search_speedup`, and the fastest scheme it tried as `fastest_scheme` (scheme, speedup,
    whether it held the drift budget). The bench switches optimize's own speed gate off, so a build optimize would
    refuse as slower is timed here: these let the bench say so (bench_results.int8_budget_note)."""
    record: dict[str, Any] = {}
    speedup = (calibrate.get("speed") or {}).get("speedup")
    if isinstance(speedup, int | float):
        record["search_speedup"] = float(speedup)
    tried = [c for c in calibrate.get("candidates") or [] if isinstance(c.get("speedup"), int | float)]
    if tried:
        fastest = max(tried, key=lambda c: c["speedup"])
        record["fastest_scheme"] = {k: fastest.get(k) for k in ("scheme", "speedup", "holds")}
    return record


def with_evidence(record: dict[str, Any], flag: str) -> dict[str, Any]:
    """An INT8 build's record (`build`) with its held-out evidence judged (`evidence_record`) where its drift holds;
    `flag`: the bench's flag that gives the held-out rows."""
    from quantserve.artifact import Manifest

    if not record.get("drift_holds"):  # a miss is said as one; a refusal has no build
        return record
    verification = Manifest.load(Path(record["path"])).verification or {}
    return {**record, **evidence_record(verification, flag)}


def evidence_record(verification: dict[str, Any], flag: str) -> dict[str, Any]:
    """What an INT8 build's held-out rows cannot show of a drift budget it holds on them. Where optimize refuses the
    build for it (rows too few even if every row agreed; one FP32 answer on every row of a classifier):
    `drift_holds` None, not True, and the line as `evidence_line`, said and marked as a drift miss is
    (bench_results.int8_budget_note); where optimize ships it with a note (the rate seen, on rows enough for
    full agreement, has a 95 % lower bound under the budget): that note, as `evidence_note`. Else {}."""
    from optimizer.drift_evidence import evidence_refusal, one_answer_refusal, thin_evidence_line

    thin = [thin_evidence_line(entry, flag) for entry in verification.get("thin_evidence") or []]
    short, one_answer = verification.get("evidence_short") or [], verification.get("one_answer") or []
    if not (short or one_answer):
        return {"evidence_note": first_of(thin)} if thin else {}
    # one FP32 class on every row: the rates seen say nothing of the others, however many rows agreed
    refusal = one_answer_refusal(one_answer) if one_answer else evidence_refusal(short)
    # its reason alone: the words before it are bench_results.int8_budget_note's, its advice names optimize's flags
    optimize_line = str(refusal).split(": ", 1)[-1].split("; nothing written")[0]
    return {"drift_holds": None, "evidence_line": first_of(thin) if thin and not one_answer else optimize_line}


def reuse_line(records: dict[str, dict[str, Any]], why: str) -> str | None:
    """The line for builds reused from their folders (no optimize ran: its progress lines are absent), with `why`
    that is safe; None where every build was made afresh."""
    reused = [precision for precision, record in records.items() if record.get("reused")]
    if not reused:
        return None
    folders = [Path(records[precision]["path"]) for precision in reused]
    where = folders[0] if len(folders) == 1 else Path(os.path.commonpath(folders))
    builds = " and ".join(p.upper() for p in reused) + (" builds" if len(reused) > 1 else " build")
    return f"{builds} reused from {where} ({why}; --rebuild optimizes afresh)"


def first_of(lines: list[str]) -> str:
    """The first line, and how many more there are."""
    return lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
