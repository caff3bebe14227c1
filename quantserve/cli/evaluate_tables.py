"""What `quantserve evaluate` prints: one row per served variant (the scored output's figures, the version and
precision that answered it) and every budgeted metric of every output against the drift budget (split from the
command module, which keeps the flags and the run).
"""

from __future__ import annotations

from typing import Any


def print_table(report: Any, console: Any = None) -> None:
    """One row per served variant, with the version that answered it and that version's precision as deployed;
    model names are never cut (narrow consoles get one block per model)."""
    from quantserve.cli.tables import NAME, TEXT, Column, fmt, print_rows

    headers = ("accuracy", "drop pts", "F1 macro", "AUC-ROC", "top-1 agree", "max abs diff", "cosine min")
    columns = [Column("model", NAME), Column("version", TEXT), Column("precision", TEXT), *(Column(h) for h in headers)]
    rows = [
        [
            v.model,
            v.version or "-",
            v.precision or "not recorded",
            fmt(v.accuracy, 4),
            fmt(v.accuracy_drop_points, 2),
            fmt(v.f1_macro, 4),
            fmt(v.auc_roc_ovr, 4),
            fmt(top1_agreement(report, v), 4),
            fmt(v.max_abs_diff, 5),
            fmt(v.cosine_min if report.cosine_told(v) else None, 4),  # an embedding's figure only
        ]
        for v in report.variants
    ]
    metric = next((v.user_metric["spec"] for v in report.variants if v.user_metric), None)
    if metric is not None:  # the user's own task metric, last: what they judge the model by
        columns.append(Column(metric))
        for row, v in zip(rows, report.variants, strict=True):
            row.append(fmt(v.user_metric["value"], 4) if v.user_metric else "")
    shown = [i for i, rows_at in enumerate(zip(*rows, strict=True)) if i not in (1, 2) or _told(rows_at)]
    columns, rows = [columns[i] for i in shown], [[row[i] for i in shown] for row in rows]
    # the output scored named: a five-head model's table read digit_0's figures unnamed beside digit_4's drift (s43)
    scored = f", output '{report.output}'" if report.output else ""
    scope = report.accuracy_scope()  # labels only the drift could use: a tagger's accuracy is per token (s56)
    scored += f" (accuracy {scope})" if scope.startswith("by ") else ""
    # a multitask output's top-1 figure is its worst task's decision agreement (`loadtest.evaluator_tasks`, s61)
    scored += " (top-1 agree: the worst task's decision agreement)" if _tasks_scored(report) else ""
    scored += "; other outputs: the tables below" if _other_outputs(report) else ""
    print_rows(f"accuracy drift vs {report.reference}{scored}", columns, rows, console)
    print_drift_rows(report, console)
    print_value_rows(report, console)


def _other_outputs(report: Any) -> bool:
    """Whether a variant's drift record holds outputs besides the one the table above scores: the headline block
    titled "output 'gender'" said nothing of the age head beside it (session 63)."""
    return any(set(v.drift or {}) - {report.output} for v in report.variants)


def print_value_rows(report: Any, console: Any = None) -> None:
    """Each value output's mean, p95 and max |Δ| from the reference in its own units (`loadtest.report_accuracy`)."""
    from loadtest.report_accuracy import VALUE_DIFFERENCE_TITLE, value_difference_rows
    from quantserve.cli.tables import NAME, TEXT, Column, print_rows

    header, rows = value_difference_rows(report)
    if rows:
        named = [Column(header[0], NAME), Column(header[1], NAME), Column(header[2], TEXT)]
        columns = [*named, *(Column(h) for h in header[3:])]
        print_rows(VALUE_DIFFERENCE_TITLE, columns, rows, console)


def top1_agreement(report: Any, variant: Any) -> float | None:
    """The scored output's top-1 agreement: the evaluator sets `top1_agreement` only when it scores with labels, but
    the drift budget measures it on a class-score output without them too (ICLabel's softmax, evaluated on unlabelled
    rows, read "–" here beside the drift table's 0.9928). The reference agrees with itself where another has one."""
    if variant.top1_agreement is not None:
        return variant.top1_agreement  # type: ignore[no-any-return]
    if variant.model != report.reference:
        return _drift_top1(report, variant)
    return 1.0 if any(_drift_top1(report, v) is not None for v in report.variants) else None


# the drift record's top-1 figure by the output's kind: a class-score output's, a tagger's per real token (khmersm's
# segmenter read "–" beside the drift table's token agreement 0.9993, session 50), a TopK's first id, an id's
TOP1_FIGURES = ("top1_agreement", "token_agreement", "first_id_agreement", "id_agreement")


def _drift_top1(report: Any, variant: Any) -> float | None:
    record = (variant.drift or {}).get(report.output) or {}
    return next((record[key] for key in TOP1_FIGURES if record.get(key) is not None), None)


def _tasks_scored(report: Any) -> bool:
    """Whether the headline scored a multitask output: each task's agreement recorded, not one top-1 figure."""
    return any(v.task_agreements is not None for v in report.variants)


def _told(cells: tuple[str, ...]) -> bool:
    """A version/precision column says something: an unversioned run (results saved before versions were recorded,
    a runner that is not Triton) would fill it with "-" and "not recorded", which pushed a two-model table past 80
    columns."""
    return any(cell not in ("-", "not recorded") for cell in cells)


def print_drift_rows(report: Any, console: Any = None) -> None:
    """Every budgeted metric of every output of every variant (the table above scores one output; a detector's
    box output was judged but shown only in accuracy.json), a rate held on rows too few to show it marked as the
    report's verdict marks it (it read "ok" beside report.md's NOT SHOWN, session 62)."""
    from loadtest.report_accuracy import marked_drift_rows
    from quantserve.cli.tables import NAME, NUMBER, TEXT, Column, print_rows

    rows = [r.cells() for v in report.variants if v.model != report.reference for r in marked_drift_rows(report, v)]
    if rows:
        kinds = ((NAME, "model"), (NAME, "output"), (TEXT, "kind"), (NAME, "metric"), (NUMBER, "value"))
        columns = [*(Column(h, k) for k, h in kinds), Column("budget", TEXT), Column("", TEXT)]
        print_rows("drift per output, against the budget", columns, rows, console)
