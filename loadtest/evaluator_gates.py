"""The gates and --label-threshold `evaluate` judges served outputs under: its own, else those the evaluated builds
were judged under.

optimize judges an output NAME given `--gate NAME=BY` only where FP32's BY reaches --label-threshold
(`optimizer.gated_maps`), and reads scores, masks and boxes at a --label-threshold given; `deploy` records both in the
served config (`serving.gates_parameter`). `evaluate` applies the same budget as optimize, so without a --gate or a
--label-threshold of its own it takes the builds', and says so once each.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from optimizer.drift_budget import DriftBudget, UnsetThreshold
from quantserve.errors import QuantserveError
from serving.gates_parameter import recorded_gates, recorded_label_threshold


def told_gates(
    configs: Mapping[str, Mapping[str, Any] | None], budget: DriftBudget, outputs: Collection[str]
) -> tuple[DriftBudget, list[str]]:
    """`budget` with the gates evaluate judges `outputs` under: its own --gate where given (`budget.gates`: they
    win, and a note names each build gated otherwise), else those the models' builds recorded (read off each
    model's served `configs`), with one note saying whose they were. Two builds gating one output by different
    outputs are one line naming the flag. The --label-threshold likewise (`told_threshold`), taken first: the gates
    are read at it."""
    budget, said = told_threshold(configs, budget)
    budget, notes = _told_gates(configs, budget, outputs)
    return budget, [*said, *notes]


def told_threshold(
    configs: Mapping[str, Mapping[str, Any] | None], budget: DriftBudget
) -> tuple[DriftBudget, list[str]]:
    """`budget` at the --label-threshold the models' builds were given at optimize (read off their served
    `configs`) where evaluate's own is not given, with one note saying whose it was; evaluate's own where given, with
    a note naming each build given another. Builds given different ones are one line naming the flag."""
    given = {m: t for m, config in configs.items() if (t := recorded_label_threshold(config or {})) is not None}
    if not given:
        return budget, []
    if not isinstance(budget.label_threshold, UnsetThreshold):
        own = float(budget.label_threshold)
        return budget, [
            f"--label-threshold {own:g} read the outputs; model '{model}' was built with --label-threshold {t:g}"
            for model, t in given.items()
            if t != own
        ]
    (one, first), *rest = given.items()
    if (other := next(((m, t) for m, t in rest if t != first), None)) is not None:
        raise QuantserveError(
            f"model '{one}' was built with --label-threshold {first:g}, model '{other[0]}' with --label-threshold "
            f"{other[1]:g}: pass --label-threshold to say where evaluate reads the outputs"
        )
    many = len(given) > 1
    built = f"model{'s' if many else ''} {', '.join(repr(m) for m in given)} {'were' if many else 'was'} built"
    note = f"outputs read at --label-threshold {first:g}, as {built} with; --label-threshold X reads otherwise"
    return replace(budget, label_threshold=first), [note]


def _told_gates(
    configs: Mapping[str, Mapping[str, Any] | None], budget: DriftBudget, outputs: Collection[str]
) -> tuple[DriftBudget, list[str]]:
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
    # a build recorded before session 60 carries the threshold its gates were read at, given or not: said, not taken
    legacy = [model for model in models if recorded_label_threshold(configs[model] or {}) is None]
    thresholds = {recorded[model][1] for model in legacy} - {None, float(budget.label_threshold)}
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
