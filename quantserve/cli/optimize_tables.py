"""What `quantserve optimize` prints: the stages, the verification against FP32 per output, and a refused build's
figures (split from the command module, which keeps the flags and the run)."""

from __future__ import annotations

from typing import Any

from quantserve.cli.tables import NAME, TEXT, Column, print_rows


def print_stages(stages: list[dict[str, Any]], console: Any = None) -> None:
    """One row per stage with its main facts."""
    recurrent = recurrent_nodes(stages)  # the calibrate row counts them: they stay FP32 whatever the build kept
    rows = [
        [str(r.get("stage", "?")), str(r.get("tool", r.get("exporter", ""))).rsplit(".", 1)[-1], _details(r, recurrent)]
        for r in stages
    ]
    print_rows("optimize", [Column("stage", NAME), Column("tool", TEXT), Column("details", TEXT)], rows, console)


def recurrent_nodes(stages: list[dict[str, Any]]) -> dict[str, int]:
    """{op: nodes} of the GRU/RNN nodes in the graph calibrated (the fuse stage's op counts): ONNX Runtime has no INT8
    kernel for them (`optimizer.quant_exclusions.NO_INT8_RECURRENT_OPS`), so they stay FP32 beside the nodes the
    build kept. Beside "3 nodes FP32" and one INT8 node, sleepecg's 4 GRU (99 % of its multiply-adds) went unsaid."""
    from optimizer.quant_exclusions import NO_INT8_RECURRENT_OPS

    counts = next((r.get("op_types_after") for r in stages if r.get("stage") == "fuse"), None)
    counts = counts if isinstance(counts, dict) else {}
    return {op: int(counts[op]) for op in sorted(NO_INT8_RECURRENT_OPS) if counts.get(op)}


def _details(record: dict[str, Any], recurrent: dict[str, int] | None = None) -> str:
    stage = record.get("stage")
    if stage == "export":
        source, opset = record.get("source_opset"), record.get("opset")
        # an ONNX file converted up (its opset 9 read "opset 13" as if the file were 13): both said
        upgraded = f"{source} → " if source is not None and source != opset else ""
        return f"opset {upgraded}{opset}, {nodes_word(record.get('nodes'))}"
    if stage == "fuse":
        skipped = " (left unfused: see the note)" if record.get("unfused") else ""
        return f"nodes {record.get('nodes_before')} → {record.get('nodes_after')}{skipped}"
    if stage == "calibrate":
        return _calibrate_details(record, recurrent or {})
    if stage == "build":
        return f"target {record.get('target')}"
    return ""


def _calibrate_details(record: dict[str, Any], recurrent: dict[str, int]) -> str:
    """Static: method, types, samples, cache; dynamic: weights only (nothing calibrated); then what the search kept,
    and the `recurrent` nodes that have no INT8 kernel. 7-bit weights (`reduce_range`, chosen where u8 × s8 saturates
    without VNNI) are named: the type alone hid them."""
    weights = f"{record.get('weight_type')}{' 7-bit' if record.get('reduce_range') else ''}"
    if str(record.get("scheme", "")).startswith("dynamic"):
        parts = [f"dynamic, {weights} weights per channel, activations quantized per run"]
    else:
        parts = [
            f"{record.get('scheme', 'static')} {record.get('method')}".strip(),
            f"{record.get('activation_type')}/{weights}",
            f"{record.get('samples')} samples, cache {record.get('cache')}",
        ]
    if "fp32_compute" in record:
        parts.append(f"{_share_words(record['int8_mac_share'])}, {_fp32_compute_words(record, recurrent)}")
    elif "int8_mac_share" in record:  # a manifest from before session 64: the nodes kept, not the scheme's own
        kept = f"{nodes_word(len(record.get('kept_fp32') or []))} {'kept FP32' if recurrent else 'FP32'}"
        parts.append(f"{mac_share(record['int8_mac_share'])} of MACs in INT8, {kept}")
        if recurrent:  # beside the nodes kept, those no INT8 kernel runs: "3 nodes FP32" read as almost all INT8
            parts.append(" and ".join(f"{count} {op}" for op, count in recurrent.items()) + " with no INT8 kernel")
    return ", ".join(parts)


def _fp32_compute_words(record: dict[str, Any], recurrent: dict[str, int]) -> str:
    """E.g. "28 compute nodes FP32 (Conv ×27, MatMul ×1): 27 left FP32 by static_qdq_matmul_only, 1 kept FP32": every
    compute node left FP32 (`int8_verdict`'s `fp32_compute`), then why: the scheme does not quantize its op type, the
    search kept it (`fp32_compute_kept`), or no INT8 kernel runs it. faceres' row read "10 nodes FP32", its 9 output
    ops and 1 MatMul kept, beside 27 convolutions matmul_only never quantizes (session 64)."""
    by_op: dict[str, int] = record["fp32_compute"]
    total, kept = sum(by_op.values()), int(record.get("fp32_compute_kept") or 0)
    no_kernel = sum(recurrent.values())
    left = total - kept - no_kernel
    why = [f"{left} left FP32 by {record.get('scheme', 'the scheme')}"] if left > 0 else []
    why += [f"{kept} kept FP32"] if kept else []
    why += (
        [" and ".join(f"{count} {op}" for op, count in recurrent.items()) + " with no INT8 kernel"] if recurrent else []
    )
    ops = ", ".join(f"{op} ×{count}" for op, count in by_op.items())
    words = f"{total} compute node{'' if total == 1 else 's'} FP32" + (f" ({ops})" if ops else "")
    return f"{words}: {', '.join(why)}" if why else words


def _share_words(share: float | None) -> str:
    """E.g. "73% of MACs in INT8"; None: compute inside a Loop/Scan/If body runs an unknown number of times
    (`compute_share.int8_share_with_subgraphs`): SLANet-plus' FP32 decoder loop had read "100% of MACs in INT8"."""
    return (
        "INT8 share of MACs unknown (loop or branch bodies)" if share is None else f"{mac_share(share)} of MACs in INT8"
    )


def nodes_word(count: Any) -> str:
    """A count of nodes, one in the singular ("1 node"): rxnfp's calibrate row read "1 nodes FP32" (session 61)."""
    return f"{count} node{'' if count == 1 else 's'}"


def print_refusal_figures(record: dict[str, Any], console: Any = None, noted: bool = True) -> None:
    """A refused build's verification table (drift, and speed where it was timed) on stdout, before the line on
    stderr: "its drift is within the budget" is otherwise shown by nothing. The INT8 search's refusals carry their
    closest candidate's (`optimizer.refusal_figures`); refusals that carry neither (too few rows, a search that
    measured no candidate) print nothing. `noted`: the notes are printed (not --quiet; `thin_words`)."""
    verification = dict(record.get("verification") or {})
    if record.get("speed"):
        verification["speed"] = record["speed"]
    if verification.get("outputs"):
        print_verification(verification, console, noted=noted)
    elif verification.get("speed"):  # the drift figures not carried: the speed row alone, no drift verdict claimed
        columns = [Column("metric", NAME), Column("value"), Column("budget")]
        print_rows("speed", columns, [_speed_row(record["speed"])], console)


def print_verification(
    verification: dict[str, Any], console: Any = None, compared: str = "int8", noted: bool = True
) -> None:
    """Per output (its kind in the heading): each budgeted metric against its budget, then the extras; then speed.
    `compared` is the build's precision: an FP32 build's accuracy reads "(FP32 → FP32 build)", not "→ INT8".
    `noted`: the notes are printed beside it (not --quiet), so the header may point to one (`thin_words`)."""
    from rich.console import Console

    from optimizer.drift_checks import BUDGETED, CHECKS
    from optimizer.refusal_figures import side_by_side

    console = console or Console()
    budget = verification.get("budget") or {}
    verdict = "holds" if verification.get("holds", True) else "MISSED"
    verdict += thin_words(verification, noted) if verification.get("holds", True) else ""
    console.print(f"[bold]verification vs FP32[/] ({verification.get('data', 'n/a')}): budget {verdict}")
    columns = [Column("metric", NAME), Column("value"), Column("budget")]
    loop = verification.get("closed_loop") or {}
    judged = [(name, record, "") for name, record in (verification.get("outputs") or {}).items()]
    stream = f", {loop.get('rows')} rows as one stream fed its own state"  # a stateful model's (state_loop)
    if int(loop.get("sequences", 1)) > 1:  # each sequence's first row fed the data's state
        stream = f", {loop.get('rows')} rows in {loop['sequences']} sequences, each fed its own state"
    judged += [(name, record, stream) for name, record in (loop.get("outputs") or {}).items()]
    for name, record, how in judged:
        kind = record.get("kind", "?")
        if record.get("judged_with"):  # a split box list's member (`optimizer.split_box_lists`): no figures of its own
            console.print(f"output {name} ({kind}): judged as part of the box list of '{record['judged_with']}'")
            continue
        budgeted = BUDGETED.get(kind, ())
        rows = [
            [
                metric,
                _value(record, metric, compared),
                _fmt(budget.get(CHECKS[metric][1])) if metric in budgeted else "",
            ]
            for metric in dict.fromkeys((*budgeted, *INFORMATIVE))
            if metric in record
        ]
        rows = per_request_rows(record, budget) if kind == "per request" else in_own_units(record, rows)
        print_rows(f"output {name} ({kind}{how})", columns, rows, console)
    roll = verification.get("rollout")  # a decoder fed its own tokens (optimizer.rollout): was in the manifest only
    if roll:
        starts = f"{roll['starts']} sequence starts" if roll.get("sequence_starts") else f"{roll['starts']} starts"
        steps = f"{roll['steps']} steps"
        if roll.get("end_token") is not None:
            steps = f"up to {steps}, ended at FP32's token {roll['end_token']}"
        heading = f"output {roll['output']} (free-running rollout: {starts} × {steps})"
        rows = [
            ["sequence_agreement", _fmt(roll["sequence_agreement"]), _fmt(roll["budget"])],
            ["token_agreement", _fmt(roll["token_agreement"]), ""],
        ]
        print_rows(heading, columns, rows, console)
    overall = [["samples", _fmt(verification.get("samples")), ""]]
    user = verification.get("metric")
    if user:
        if user.get("failed"):  # NaN, infinite or raising on INT8's outputs (`optimizer.user_metric.add_user_metric`)
            value = f"{_fmt(user['fp32'])} → failed: {user['failed']}"
        elif user.get("relative_drop") is None:  # labels=None and both alike: no evidence (the note says why)
            value = f"not scored (labels=None; {_fmt(user['fp32'])} for both)"
        else:
            value = side_by_side(float(user["fp32"]), float(user["int8"]))  # "15.458 → 15.460", not "15.46 → 15.46"
        overall.append([user["spec"], value, f"drop ≤ {_fmt(budget.get('max_metric_drop'))}"])
    if verification.get("speed"):
        overall.append(_speed_row(verification["speed"]))
    print_rows("overall", columns, overall, console)


def per_request_rows(record: dict[str, Any], budget: dict[str, Any]) -> list[list[str]]:
    """An output verified request by request (`optimizer.verify_per_request`): the share of requests of FP32's length
    and the cosine over the others, each beside its budget. The table had shown cosine_mean and max_abs_diff with no
    budget, under "budget MISSED", and not the share that missed (probe 66I)."""
    share = record.get("requests_same_shape")
    requests = f" of {record['requests']} requests" if record.get("requests") else ""
    rows = [[f"share of FP32's length{requests}", _fmt(share), _fmt(budget.get("min_sequence_agreement"))]]
    for metric in ("cosine_mean", "cosine_worst"):
        value = record.get(metric)
        shown = _fmt(value) if value is not None else "– (no request of FP32's length)"
        rows.append([metric, shown, _fmt(budget.get(f"min_{metric}"))])
    rows.append(["max_abs_diff", _fmt(record.get("max_abs_diff")), ""])
    return rows


def thin_words(verification: dict[str, Any], noted: bool = True) -> str:
    """ " on thin evidence (output 'gender': see the note)" where an agreement rate held on held-out rows too few to
    show its budget (`optimizer.drift_evidence.thin_evidence`, the note optimize prints); "" otherwise. The header
    read plain "budget holds" beside that note (face-api's gender, 0.9933 over 300 rows, session 63). Where no note
    is printed (`noted` False: --quiet), what it would say in short: a header pointed to a note none printed."""
    outputs = list(dict.fromkeys(str(entry.get("output")) for entry in verification.get("thin_evidence") or []))
    if not outputs:
        return ""
    named = ", ".join(f"'{name}'" for name in outputs)
    where = "see the note" if noted else "held-out rows too few to show the budget"
    return f" on thin evidence (output{'s' if len(outputs) > 1 else ''} {named}: {where})"


def in_own_units(record: dict[str, Any], rows: list[list[str]]) -> list[list[str]]:
    """A value output's rows with its max_abs_diff row read as |Δ| in its own units: mean, p95 and max
    (`optimizer.value_errors`); a score's rows as they are. Information: no budget."""
    from optimizer.value_errors import VALUE_DIFFERENCE_LABEL, value_difference_words

    words = value_difference_words(record)
    if words is None:
        return rows
    return [[VALUE_DIFFERENCE_LABEL, words, ""] if row[0] == "max_abs_diff" else row for row in rows]


def _speed_row(speed: dict[str, Any]) -> list[str]:
    """The speedup, both times, the load where busy and the rounds' spread where it left the speedup uncertain."""
    from quantserve.metrics import beside_bar

    times, spread_shown = _speed_times(speed)
    value = f"{beside_bar(speed['speedup'], speed['min_speedup'])}× {times}"
    if speed.get("busy"):
        value += f", busy: others took {speed['others_share']:.0%} of the cores"
    if speed.get("basis") == "CPU time" and speed.get("cpu_speedup") is not None:  # what decided (`speed_blocks`)
        value += f"; by CPU time {speed['cpu_speedup']:.2f}×, which decided"
    ceiling = speed.get("int8_ceiling")
    if ceiling is not None and ceiling < speed["min_speedup"]:  # shipped under --allow-slower (`int8_capped`)
        # a gain past the ceiling is the clock's luck; a loss under it is real (Q/DQ conversions around FP32 ops)
        noise = "timing noise: " if speed["speedup"] > ceiling else ""
        value += f", {noise}FP32 in all but {mac_share(speed['int8_mac_share'])} of MACs, at most {ceiling:.2f}×"
    rounds = speed.get("round_speedups") or []
    if speed.get("verdict") == "uncertain" and rounds and not spread_shown:
        value += f", uncertain: rounds {min(rounds):.2f}-{max(rounds):.2f}×"
    lowered = f" (not {speed['batch_asked']}: memory)" if speed.get("batch_asked") else ""  # `timing_rows`
    label = f"speedup, batch {speed.get('batch_size', '?')}{lowered}, {speed['threads']} threads"
    return [label, value, f"≥ {speed['min_speedup']:g}"]


SHOWN_RATIO_SLACK = 0.03  # the ms shown beside a speedup may read up to 3 % off it (one pair of the median block)


def _speed_times(speed: dict[str, Any]) -> tuple[str, bool]:
    """Both models' ms where they read as the speedup (within SHOWN_RATIO_SLACK); else FP32's ms and the blocks' spread,
    and whether that spread was shown. The ms are one measured pair (the median block's median pair); on a busy machine
    its pairs scatter and that pair can read the other way: a probe's "1.11× (9.6 → 9.97 ms)" (session 29). Within
    the slack too, a pair pointing the other way than the speedup is not shown: "1.02× (91.3 → 91.7 ms)", session 46."""
    fp32, int8 = speed["fp32_ms"], speed["int8_ms"]
    same_way = (fp32 > int8) == (speed["speedup"] > 1) or fp32 == int8 or speed["speedup"] == 1
    if int8 > 0 and same_way and abs(fp32 / int8 / speed["speedup"] - 1) <= SHOWN_RATIO_SLACK:
        return f"({fp32:.3g} → {int8:.3g} ms)", False
    rounds = speed.get("round_speedups") or []
    if len(rounds) > 1:
        return (
            f"(the median of {len(rounds)} blocks' ratios, {min(rounds):.2f}-{max(rounds):.2f}×; FP32 {fp32:.3g} ms)",
            True,
        )
    return f"(FP32 {fp32:.3g} ms)", False


# recorded for every kind, shown beside the budgeted ones (whole-tensor figures are information only); the accuracy
# behind a budgeted drop, FP32's and INT8's (a sigmoid head's 0/1 labels at --label-threshold read its drop alone)
INFORMATIVE = (
    "accuracy",
    "top1_agreement",
    "decision_agreement",
    "top_class_agreement",
    "cosine_mean",
    "channel_correlation_worst",
    "relative_error",
    "max_abs_diff",
)


def _value(record: dict[str, Any], metric: str, compared: str = "int8") -> str:
    """A metric's value; an accuracy as FP32's beside INT8's; the worst channel correlation names where it lies (axis
    and entry, as refusals do: a denoiser's (N, 1, H, W) worst "channel" was an image row, axis 2, read as its one
    colour channel, session 56) and how many channels it skipped as still in FP32 (`optimizer.channel_metrics`):
    LAC's 10 unused tag slots had read as a worst channel of 0 (session 56); a score's decision agreement its
    minority side's rows and agreement: "1" had rested on 4 rows below 0.5 (session 64)."""
    if metric == "accuracy" and isinstance(record.get("fp32_accuracy"), float) and isinstance(record[metric], float):
        from optimizer.refusal_figures import side_by_side

        built = "FP32 build" if compared.lower() == "fp32" else compared.upper()
        return f"{side_by_side(record['fp32_accuracy'], record[metric])} (FP32 → {built})"
    value = _fmt(record[metric])
    sides = record.get("decision_sides") or []
    if metric in ("decision_agreement", "flag_agreement") and sides:  # the side with fewer rows (`decision_sides`)
        side = sides[0]
        return f"{value} ({side['side']} {side['threshold']:g}: {side['rows']} rows, {_fmt(side['agreement'])})"
    if metric != "channel_correlation_worst":
        return value
    said = []
    if record.get("channel_worst_axis") is not None and record.get("channel_worst") is not None:
        said.append(f"axis {record['channel_worst_axis']}, entry {record['channel_worst']}")
    still = int(record.get("channels_still") or 0)
    if still:
        said.append(f"{still} of {record.get('channels', '?')} channels still in FP32, skipped")
    return f"{value} ({'; '.join(said)})" if said else value


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def mac_share(share: float) -> str:
    """`73%`, or two significant digits below 10 % (`0.55%`): a GRU encoder's INT8 sliver had read "1%"."""
    return f"{share:.0%}" if share >= 0.1 or share == 0 else f"{share * 100:.2g}%"
