"""The gates `evaluate` judges served outputs under: its own --gate, else those the evaluated builds were judged under.

optimize judges an output NAME given `--gate NAME=BY` only where FP32's BY reaches --label-threshold
(`optimizer.gated_maps`); `deploy` records those gates in the served config (`serving.gates_parameter`). `evaluate`
applies the same budget as optimize, so without a --gate of its own it takes the builds' gates, and says so once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from optimizer.drift_budget import DriftBudget
from quantserve.errors import QuantserveError
from serving.gates_parameter import recorded_gates


def told_gates(
    configs: Mapping[str, Mapping[str, Any] | None], budget: DriftBudget, outputs: Collection[str]
) -> tuple[DriftBudget, list[str]]:
    """`budget` with the gates evaluate judges `outputs` under: its own --gate where given (`budget.gates`: they
    win, and a note names each build gated otherwise), else those the models' builds recorded (read off each
    model's served `configs`), with one note saying whose they were. Two builds gating one output by different
    outputs are one line naming the flag."""
    recorded = {model: recorded_gates(config or {}) for model, config in configs.items()}
    recorded = {model: found for model, found in recorded.items() if found[0]}
    if budget.gates:
        return budget, _overridden(budget.gates, recorded)
    gates, told_by = dict[str, str](), dict[str, str]()
    for model, (pairs, _) in recorded.items():
        for name, by in pairs:
            if name not in outputs:
                continue
            if name in gates and gates[name] != by:
                raise QuantserveError(
                    f"model '{told_by[name]}' was built with --gate {name}={gates[name]}, model '{model}' with "
                    f"--gate {name}={by}: pass --gate NAME=BY to say where evaluate judges output '{name}'"
                )
            gates.setdefault(name, by)
            told_by.setdefault(name, model)
    if not gates:
        return budget, []
    told = replace(budget, gates=tuple(gates.items()))
    models = [model for model, (pairs, _) in recorded.items() if any(name in gates for name, _ in pairs)]
    thresholds = {recorded[model][1] for model in models} - {None, float(budget.label_threshold)}
    return told, [_note(told, models, sorted(t for t in thresholds if t is not None))]


def _note(budget: DriftBudget, models: list[str], thresholds: list[float]) -> str:
    """The one note of gates taken from the builds: whose, which, where each output was judged."""
    many = len(models) > 1
    built = f"model{'s' if many else ''} {', '.join(repr(m) for m in models)} {'were' if many else 'was'} built"
    spec = ",".join(f"{name}={by}" for name, by in budget.gates)
    where = ", ".join(
        f"output '{name}' only where FP32's '{by}' ≥ {float(budget.label_threshold):g}" for name, by in budget.gates
    )
    note = f"outputs judged under the gates {built} with (optimize --gate {spec}): {where}"
    note += "; --gate NAME=BY judges otherwise"
    if thresholds:
        shown = ", ".join(f"{t:g}" for t in thresholds)
        note += f"; the build read them at --label-threshold {shown}: pass it to judge them there"
    return note


def _overridden(given: tuple[tuple[str, str], ...], recorded: Mapping[str, tuple[Any, Any]]) -> list[str]:
    """A note per build gated otherwise than evaluate's own --gate `given`."""
    spec = ",".join(f"{name}={by}" for name, by in given)
    return [
        f"--gate {spec} judged the outputs; model '{model}' was built with --gate "
        + ",".join(f"{name}={by}" for name, by in pairs)
        for model, (pairs, _) in recorded.items()
        if set(pairs) != set(given)
    ]
