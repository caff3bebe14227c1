"""How far a drift verdict on the held-out rows can be trusted: the rows a budgeted agreement rate needs to
show (95 % lower bound), the refusal when too few are given, and notes on what the budget does not judge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from optimizer.drift_budget import DriftBudget, Refusal
from optimizer.drift_checks import BUDGETED, CHECKS, DriftReport, check_words
from optimizer.real_axes import on_real_axes
from optimizer.row_kinds import usable_labels
from optimizer.task_outputs import TASK_METRIC
from optimizer.token_values import (
    POSITIONS,
    TOKENS,
    live_positions,
    per_token,
    position_unit,
    token_positions,
    unit_of,
)
from quantserve import metrics

DISCRETE_METRICS = (
    "top1_agreement",
    "flag_agreement",
    "decision_agreement",
    "label_set_agreement",
    TASK_METRIC,  # each task's decisions over every held-out row: the worst task's (`optimizer.task_outputs`)
    "token_agreement",
    "id_agreement",
    "first_id_agreement",
    "sequence_agreement",
    "located_agreement",
)  # shares of rows: resolved by count
# counted over boxes, not rows: a box list's F1 rests on FP32's boxes at the threshold, however many rows hold them
BOX_METRICS = ("box_agreement",)
# counted over the real tokens judged, as box agreement over boxes: the rate is per token. A NER tagger's 1600 real
# tokens in 200 sentences agreed 0.9956 (95 % lower bound 0.992 by tokens) and were refused up front for 200 of the
# 268 rows a 0.99 budget needs, a faithful 1.83× build (session 45). Tokens of one sentence are not independent, nor
# are boxes of one image; the rows a sentence-level answer needs are `sequence_agreement`'s, counted by rows.
TOKEN_METRICS = ("token_agreement",)
# a per-token (N, T) output's values judged as rows of one token each (`token_values.token_values_metrics`): its label
# sets, flags and decisions are shares of real tokens, as a tagger's token agreement is, and counted so. deepcut's
# per-character word starts agreed 0.9974 over 9532 characters of 200 sentences (95 % lower bound 0.996) and read
# "NOT SHOWN" by its 200 rows, ≥ 0.982; optimize refused the same 200 sentences up front (session 58)
TOKEN_VALUE_METRICS = ("label_set_agreement", "flag_agreement", "decision_agreement")
UNITS = {
    "decision_agreement": "clear rows",
    **dict.fromkeys(BOX_METRICS, "FP32 boxes"),
    **dict.fromkeys(TOKEN_METRICS, "real tokens"),
}
# a dense output's decisions, judged only where its values turn out to be a flag's or a probability's (the kind alone
# does not say): not known before the held-out rows are run
FOUND_IN_VALUES = ("flag_agreement", "decision_agreement")
# ids are judged per sample, or per real token where they are one per token (`drift_metrics.token_ids_metrics`): the
# kind alone does not say which; before the run, with token inputs, by the tokens, else by the rows (after it, as read)
PER_SAMPLE_OR_TOKEN = {"ids": ("id_agreement", "token_agreement")}
MAX_ROWS_NEEDED = 100_000

MORE_NAMED = 6  # other outputs a refusal names before it counts the rest


def thin_evidence(report: DriftReport, budget: DriftBudget, rows: int) -> list[dict[str, Any]]:
    """Budgeted agreement rates that hold on `rows` held-out rows without the rows to show it: their 95 % lower
    bound is below the budget. The budget is judged on the rate seen; this says how far that can be trusted
    (magika's 32 held-out rows agreed 32 of 32, 512 other files 97.3 %), and how many rows would do. A
    probability's decisions were measured on its clear rows only (`decision_ties` near-ties left out), a box list's
    F1 on FP32's boxes (`BOX_METRICS`: 3 boxes matched of 3 show no 0.95, on rows without number)."""
    thin = []
    for output, record in report.outputs.items():
        budgeted = BUDGETED.get(record.get("kind", ""), ())  # a multilabel record's decision_agreement: information
        counted = (*DISCRETE_METRICS, *BOX_METRICS)
        for metric in (m for m in counted if m in budgeted and record.get(m) is not None):
            entry = _thin(output, metric, float(record[metric]), _rows_judged(metric, record, rows), budget)
            if entry and _per_token(metric, record):  # judged on its real tokens (its labelled ones, where told)
                entry["units"] = f"{'labelled' if 'tokens_real' in record else 'real'} {unit_of(record)}"
            thin += [entry] if entry else []
    return thin


def rollout_thin(roll: Mapping[str, Any], budget: DriftBudget) -> dict[str, Any] | None:
    """The thin-evidence entry of a free-running rollout (`optimizer.rollout`) whose sequence agreement holds on too
    few starts to show it, counted by its starts (the data's sequences where it has them), else None."""
    entry = _thin(roll["output"], "sequence_agreement", float(roll["sequence_agreement"]), int(roll["starts"]), budget)
    if entry:
        entry["units"] = "sequences (rolled out)" if roll.get("sequence_starts") else "rollout starts"
    return entry


def _rows_judged(metric: str, record: Mapping[str, Any], rows: int) -> int:
    """The rows `metric` was measured on: all held-out rows, but a probability's clear ones (ties left out), a box
    list's FP32 boxes and a tagger's real tokens (its labelled ones, where labels left some unlabelled:
    `drift_metrics.labelled_tokens`)."""
    if metric in BOX_METRICS:
        return int(record.get("boxes_fp32") or 0)
    if _per_token(metric, record):
        rows = int(record["tokens_judged"])
    return rows - int(record.get("decision_ties") or 0) if metric == "decision_agreement" else rows


def _per_token(metric: str, record: Mapping[str, Any]) -> bool:
    """Whether `metric` of `record` is a share of tokens: a tagger's token agreement, or a per-token output's values
    read a token at a time (`TOKEN_VALUE_METRICS`; a classification over positions answers once a row)."""
    if record.get("tokens_judged") is None:
        return False
    return metric in TOKEN_METRICS or (metric in TOKEN_VALUE_METRICS and record.get("kind") != "classification")


def _thin(output: str, metric: str, value: float, rows: int, budget: DriftBudget) -> dict[str, Any] | None:
    """The entry of a `metric` seen at `value` on `rows` rows that holds its budget but cannot show it, else None."""
    floor = float(getattr(budget, CHECKS[metric][1]))
    lower = metrics.agreement_lower_bound(value, rows)
    if not value >= floor > lower:
        return None
    return {"output": output, "metric": metric, "value": value, "rows": rows,
            "lower_bound": lower, "budget": floor, "rows_needed": _rows_needed(value, floor)}  # fmt: skip


def _rows_needed(share: float, floor: float) -> int | None:
    """The fewest rows on which `share` would show at least `floor` (None: not within MAX_ROWS_NEEDED). The bound
    grows with the rows at a fixed share, so a bisection finds them."""
    if metrics.agreement_lower_bound(share, MAX_ROWS_NEEDED) < floor:
        return None
    low, high = 0, MAX_ROWS_NEEDED  # the bound misses `floor` at low rows (or low is 0) and reaches it at high
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if metrics.agreement_lower_bound(share, middle) >= floor else (middle, high)
    return high


def rows_to_show(floor: float) -> int:
    """The fewest held-out rows on which full agreement shows at least `floor` (95 % lower bound; 268 for 0.99,
    133 for 0.98); 0 where no row count needs to (a floor of 0) or can (a floor of 1: judged on the rows seen)."""
    if not 0 < floor < 1:
        return 0
    return _rows_needed(1.0, floor) or 0


def evidence_rows(budget: DriftBudget | Mapping[str, Any]) -> int:
    """Held-out rows every budgeted agreement rate can be shown on: what optimize holds out when it may. `budget`:
    or a record's (`DriftBudget.to_dict`)."""
    floors = budget if isinstance(budget, Mapping) else budget.to_dict()
    return max(rows_to_show(float(floors[CHECKS[metric][1]])) for metric in DISCRETE_METRICS)


def evidence_shortfall(
    kinds: Mapping[str, str],
    budget: DriftBudget,
    rows: int,
    inputs: Mapping[str, np.ndarray] | None = None,
    per_token: Collection[str] = (),
    expected: Mapping[str, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Budgeted agreement rates that `rows` held-out rows cannot show even if every row agrees: 32 rows that all
    agree show only ≥ 0.92, so a 0.99 budget "held" on them says nothing (magika shipped on 32 of 32, and agreed
    97.3 % on 512 other files). Known from the output kinds alone, before any INT8 work; a per-token rate from the
    real tokens in the held-out rows' `inputs` (`TOKEN_METRICS`, and the values of the `per_token` outputs,
    `token_value_outputs`: `TOKEN_VALUE_METRICS`), or without token ids, from the positions FP32's (N, T, C) answers
    `expected` give each row (`judged_positions`)."""
    short = []
    tokens, unit = real_tokens(inputs), position_unit(inputs)
    for output, kind in kinds.items():
        budgeted = BUDGETED.get(kind, ())
        if kind in PER_SAMPLE_OR_TOKEN:
            budgeted = (PER_SAMPLE_OR_TOKEN[kind][tokens is not None],)
        for metric in (m for m in budgeted if m in DISCRETE_METRICS and m not in FOUND_IN_VALUES):
            floor = float(getattr(budget, CHECKS[metric][1]))
            needed = rows_to_show(floor)
            by_token = metric in TOKEN_METRICS or (metric in TOKEN_VALUE_METRICS and output in per_token)
            count = tokens if by_token and tokens is not None and kind != "classification" else rows
            positions = judged_positions(expected, output, rows) if by_token and tokens is None else None
            if positions is not None:
                count = positions
            if count < needed:
                entry = {"output": output, "metric": metric, "budget": floor, "rows": count, "rows_needed": needed}
                said = count is tokens and (metric not in TOKEN_METRICS or unit != TOKENS)  # else UNITS' words
                entry.update({"units": f"real {unit}"} if said else {"units": POSITIONS} if positions else {})
                short.append(entry)
    return short


def judged_positions(expected: Mapping[str, np.ndarray] | None, output: str, rows: int) -> int | None:
    """The positions a per-token output without token ids is judged over (`drift_metrics.real_tokens`: every one,
    nothing marking the real ones): `rows` times the T of its (N, T, C) answers; None where not (N, T, C). SLANet-plus's
    per-step token softmax (72 held-out rows of 1024 steps) was refused as "72 real tokens given" (probe 65D). Positions
    all 0 (`token_values.live_positions`) are left out, as the drift leaves them."""
    values = None if expected is None else expected.get(output)
    if values is None or np.ndim(values) != 3 or not np.size(values):
        return None
    live = live_positions(np.asarray(values))  # padding past a decoder's end (all 0) is not judged either
    share = float(live.mean()) if live.any() else 1.0
    return round(rows * int(np.shape(values)[1]) * share)


def token_value_outputs(expected: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray] | None) -> frozenset[str]:
    """The outputs of one float value per real token, (N, T) as the token ids in `inputs` (the rows `expected`
    answered) are: measured a token at a time (`token_values.per_token`)."""
    positions = token_positions(inputs)
    if positions is None:
        return frozenset()
    return frozenset(name for name, values in expected.items() if per_token(np.asarray(values), positions))


def real_tokens(inputs: Mapping[str, np.ndarray] | None) -> int | None:
    """The real tokens in a text model's input rows (`token_values.token_positions`), None without token ids."""
    positions = token_positions(inputs)
    return None if positions is None else int(positions.sum())


def one_answer_outputs(
    expected: Mapping[str, np.ndarray], kinds: Mapping[str, str], labels: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Classification outputs whose FP32 answer is one class on every held-out row: their top-1 agreement says only
    that this class stayed, nothing of the others. openWakeWord's timer head answered class 0 (no wake word) on all
    300 background rows, agreed 1.0 and shipped; on rows holding its wake words the same build agreed 0.987. Labels
    of two or more of its classes judge the accuracy on rows of other classes: such an output is not listed."""
    found = []
    for name, kind in kinds.items():
        values = on_real_axes(np.asarray(expected.get(name)))
        if kind != "classification" or values.ndim != 2 or len(values) < 2 or values.shape[1] < 2:
            continue
        if labels is not None and usable_labels(labels, values) and np.unique(labels).size >= 2:
            continue
        answers = np.unique(values.argmax(axis=1))
        if answers.size == 1:
            found.append(
                {"output": name, "class": int(answers[0]), "classes": int(values.shape[1]), "rows": len(values)}
            )
    return found


def one_answer_refusal(found: Sequence[Mapping[str, Any]]) -> str:
    """The one line optimize refuses with when a classifier's held-out rows all get one FP32 answer."""
    entry = found[0]
    more = _more(entry, found, "outputs, alike")
    return Refusal(
        f"the held-out rows cannot show the drift budget: output '{entry['output']}' (classification): FP32 answers "
        f"class {entry['class']} on all {entry['rows']} of them, so top-1 agreement says nothing of its other "
        f"{entry['classes'] - 1} classes{more}; nothing written: pass --eval with rows FP32 answers with other "
        "classes (or --allow-thin-evidence to judge the rows given)",
        {"refused_for": "evidence", "one_answer": list(found)},
    )


def evidence_refusal(short: Sequence[Mapping[str, Any]]) -> str:
    """The one line optimize refuses with when the held-out rows are too few to show the budget."""
    entry = max(short, key=lambda e: e["rows_needed"])
    more = _more(entry, short, "short too")
    unit = entry.get("units") or UNITS.get(entry["metric"], "rows")
    one = next((word for word in (TOKENS, POSITIONS) if unit.endswith(word)), "rows")[:-1]  # counted in rows or these
    return Refusal(
        f"too few held-out rows to show the drift budget: output '{entry['output']}': {_words(entry)} "
        f"≥ {entry['budget']:g} needs at least {entry['rows_needed']} held-out {unit} (95 % lower bound, every {one} "
        f"agreeing), {entry['rows']} given{more}; nothing written: pass --eval with more rows, or lower the budget "
        "(or --allow-thin-evidence to judge the rate seen)",
        {"refused_for": "evidence", "evidence_short": list(short)},
    )


def _words(entry: Mapping[str, Any]) -> str:
    """An evidence entry's metric in words, per position where it was counted over positions that are no tokens."""
    return check_words(entry["metric"], POSITIONS if str(entry.get("units", "")).endswith(POSITIONS) else TOKENS)


def _more(entry: Mapping[str, Any], found: Sequence[Mapping[str, Any]], how: str) -> str:
    """The other outputs named after the line's own, e.g. " (outputs 'digit_1', 'digit_2', short too)": "(and 4
    more)" left a captcha reader's user to guess which of its five heads (session 43)."""
    others = list(dict.fromkeys(str(e["output"]) for e in found if e["output"] != entry["output"]))
    if not others:
        return ""
    shown = ", ".join(f"'{name}'" for name in others[:MORE_NAMED])
    rest = f" and {len(others) - MORE_NAMED} more" if len(others) > MORE_NAMED else ""
    return f" (output{'s' if len(others) > 1 else ''} {shown}{rest}, {how})"


def thin_evidence_line(entry: Mapping[str, Any], flag: str = "--eval") -> str:
    """E.g. "output 'p': top-1 agreement 1 over 32 held-out rows shows only ≥ 0.92 (95 % lower bound), not the
    budget's 0.99; about 268 rows would (--eval)"; `flag`: the option that gives the rows (evaluate's is --data)."""
    words = _words(entry)
    rows = entry.get("units") or UNITS.get(entry["metric"], "rows")
    needed = entry["rows_needed"]
    more = f"about {needed} {rows} would ({flag})" if needed else "no row count would at this rate"
    value, bound = _shown(entry.get("value"), ".4g"), _shown(entry.get("lower_bound"), ".3g")
    return (
        f"output '{entry['output']}': {words} {value} over {entry['rows']} held-out {rows} shows only "
        f"≥ {bound} (95 % lower bound), not the budget's {_shown(entry.get('budget'), 'g')}; {more}"
    )


def within_budget_words(thin: Sequence[Mapping[str, Any]] = ()) -> str:
    """ "within the budget", as a refusal says a drift that held (a speed refusal's "; its drift is …"); where it held
    on thin evidence (`thin_evidence`'s entries), on how few rows and why they are too few, the thinnest output named:
    the flat words read as a proven fact beside a header that says "budget holds on thin evidence" (session 64)."""
    if not thin:
        return "within the budget"
    entry = max(thin, key=_shortfall)
    unit = entry.get("units") or UNITS.get(entry["metric"], "rows")
    value, bound = _shown(entry.get("value"), ".4g"), _shown(entry.get("lower_bound"), ".3g")
    others = list(dict.fromkeys(str(e["output"]) for e in thin if e["output"] != entry["output"]))
    named = ", ".join(f"'{name}'" for name in others)
    more = f"; output{'s' if len(others) > 1 else ''} {named} thin too" if others else ""
    return (
        f"within the budget on only {entry['rows']} held-out {unit} (thin evidence: output '{entry['output']}': "
        f"{_words(entry)} {value} shows only ≥ {bound} at its 95 % lower bound, not the budget's "
        f"{_shown(entry.get('budget'), 'g')}{more})"
    )


def _shortfall(entry: Mapping[str, Any]) -> float:
    """How far an entry's 95 % lower bound falls below its budget (0 where a figure is not recorded)."""
    figures = (entry.get("budget"), entry.get("lower_bound"))
    if not all(isinstance(x, int | float) and np.isfinite(x) for x in figures):
        return 0.0
    return float(entry["budget"]) - float(entry["lower_bound"])


def null_budget(verification: Mapping[str, Any]) -> str | None:
    """Which thin-evidence entry of a saved verification has no budget ("verification.thin_evidence[0].budget is
    null"), None where each has one. No flag gives a NaN budget: a null is a hand-edited or cut manifest, and the
    budget decides whether the rate is shown at all (`rows_to_show`), so a reader says so rather than guess."""
    for i, entry in enumerate(verification.get("thin_evidence") or []):
        if isinstance(entry, Mapping) and entry.get("budget") is None:
            return f"verification.thin_evidence[{i}].budget is {'null' if 'budget' in entry else 'missing'}"
    return None


def _shown(figure: Any, spec: str) -> str:
    """A recorded figure formatted by `spec`, "n/a" where it is not a finite number: a manifest or accuracy.json
    holds a NaN as null (`quantserve.json_files`), which had crashed report --build and bench (session 59)."""
    number = isinstance(figure, int | float) and not isinstance(figure, bool) and np.isfinite(figure)
    return format(figure, spec) if number else "n/a"


NEIGHBOUR_REGRET_NOTED = 0.05  # mean regret (metrics.nearest_neighbour_regret) above which an embedding gets a note


def neighbour_notes(outputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A note per embedding output whose nearest held-out rows changed to rows FP32 ranks as clearly less similar.

    Embeddings are budgeted by cosine: how often a neighbour search's answer changes depends on how the held-out
    rows lie, so it is not a default budget that random held-out rows would fail. The regret (how much less similar
    the new nearest row is, by FP32's similarities, over the gap to a typical row) leaves out swaps among
    near-duplicates (a tight cluster's rows, all nearest) and catches a random-weight CLIP image embedding that
    passed at cosine 0.9984 while its nearest rows changed for most rows, every pair at cosine 0.987."""
    notes = []
    for name, record in outputs.items():
        regret = record.get("neighbour_regret")
        if record.get("kind") != "embedding" or regret is None or not regret > NEIGHBOUR_REGRET_NOTED:
            continue  # NaN: values non-finite, judged on their own
        notes.append(
            f"output '{name}': judged by cosine (mean {record['cosine_mean']:.4f}), yet the nearest held-out row "
            f"changed for {record['nearest_changed']:.0%} of the rows, to rows FP32 finds clearly less similar (mean "
            f"regret {regret:.2f} of the gap from the nearest to a typical row); where answers come from a neighbour "
            "search, judge it by that search: --metric package.module:function"
        )
    return notes


def minority_note(name: str, record: Mapping[str, Any], floor: float) -> str:
    """The note on a score whose decisions lie on one side of the threshold on too few rows to show `floor` there
    (`decision_metrics.decision_sides`, the side with fewer rows): pooled over every row, "decision agreement 1"
    rested on 4 of @vladmandic/human's 400 antispoof rows below 0.5 (session 64). A note, not a refusal: the rows
    FP32 puts on each side are not known before the held-out rows are run. "" where that side has the rows."""
    sides = record.get("decision_sides") or []
    needed = rows_to_show(floor)
    if not sides or sides[0]["rows"] >= needed:
        return ""
    side, other = sides[0], sides[-1]
    unit = unit_of(record) if "tokens_judged" in record else "rows"
    clear = "clear " if "decision_agreement" in record else ""
    return (
        f"output '{name}': its decisions were judged on only {side['rows']} {clear}{unit} FP32 puts {side['side']} "
        f"{side['threshold']:g} (INT8 agrees {side['agreement']:.4g} there; {other['rows']} {other['side']}); about "
        f"{needed} on that side would show the budget's {floor:g} there (95 % lower bound, every one agreeing)"
    )
