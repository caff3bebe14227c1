"""What the speed gate's timing rounds show: INT8 faster, slower, or not known, and the lines that say so.

Pure functions of the recorded rounds (one FP32/INT8 ratio per block of alternated pairs, `optimizer.speed`), so
the rule is tested on round lists as recorded, with no timing in the test.

**The rule.** A build ships when the median round clears `--min-speedup` (1.1: a margin over noise) *and* a lower
confidence bound of that median clears 1.0 (the bar itself where `--min-speedup` is under 1). The bound is the
k-th lowest of n rounds, k the largest with P(Binomial(n, ½) ≤ k − 1) ≤ 1/8: where INT8 is no faster, a round is
as likely below 1.0 as above it, so no more than k − 1 of them fall below 1.0 with probability at most 1/8: the
chance of the default three rounds all landing above 1.0 (k = 1 for up to 5 rounds, 2 for 6-8, 3 for 9). A median
alone is not enough: a build was shipped at 1.13× on rounds [1.55, 1.11, 1.16, 0.90, 0.91, 1.19] timed while
other processes took 78 % of the 2 cores, and ran 0.85-1.15× in fresh processes; its second-lowest round, 0.91,
is the bound for six rounds, and it is refused as not known.

**Why it is enough, and does not refuse good builds.** Rounds whose bounds straddle the verdict (the median clears
the bar but the bound does not, or the median misses it but the highest rounds clear it) are unsettled: the gate
times more rounds, at most `rounds` more and within `RETAKE_SECONDS`, the bounds it already had for busy rounds.
Simulated (10 000 runs of this rule, log-normal round noise at the spreads measured here: σ 0.1 between quiet
processes, 1.54× vs 1.34×; σ 0.3 busy): a model with no gain shipped 4-15 % of the time against 8-32 % under the
median alone; a 1.3× model on quiet rounds ships every time, and a 2× model (the demo's CNN) at σ 0.3 in 999 of
1000 runs. A real gain's rounds on a quiet machine stay above 1.0 and cost no extra round.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Where INT8 is no faster, its rounds may all clear the lower bound with at most this probability: the chance that
# three rounds (the default) all land above 1.0 by luck.
NO_GAIN_SHIP_CHANCE = 1 / 8
# INT8 covering less than this share of the multiply-adds cannot make the model faster: a slower INT8 is refused
# naming the FP32 ops that dominate, not the machine's load (resemblyzer's GE2E: 0.03 %, its 3 LSTMs FP32).
LOW_INT8_SHARE = 0.10
# what a compute op type left FP32 needs to run in INT8, where ONNX Runtime's static Q/DQ has no kernel for it
NO_STATIC_INT8 = {
    "LSTM": "ONNX Runtime has no INT8 LSTM kernel in static Q/DQ",
    "GRU": "ONNX Runtime has no INT8 GRU kernel",
    "RNN": "ONNX Runtime has no INT8 RNN kernel",
}

FASTER, SLOWER, UNCERTAIN = "faster", "slower", "uncertain"


@dataclass(frozen=True)
class RoundsVerdict:
    """The rounds' median, the confidence bounds of that median, and what they say against the bar."""

    rounds: tuple[float, ...]
    min_speedup: float
    median: float
    low: float  # the k-th lowest round: the median is above it with confidence ≥ 1 − NO_GAIN_SHIP_CHANCE
    high: float  # the k-th highest round: the mirror bound
    outcome: str  # FASTER (ships), SLOWER, UNCERTAIN (the median clears the bar, the bound does not)
    settled: bool  # both bounds on the outcome's side: more rounds would not change it

    @property
    def floor(self) -> float:
        """What the lower bound must clear: 1.0 (INT8 not slower), or the bar where the user set it under 1."""
        return min(1.0, self.min_speedup)

    @property
    def below_floor(self) -> int:
        return sum(ratio < self.floor for ratio in self.rounds)


def bound_rank(n: int) -> int:
    """k for n rounds: the largest k with P(Binomial(n, ½) ≤ k − 1) ≤ NO_GAIN_SHIP_CHANCE (1 where none is)."""
    rank = 1
    for k in range(2, n + 1):
        if sum(math.comb(n, i) for i in range(k)) / 2**n <= NO_GAIN_SHIP_CHANCE:
            rank = k
    return rank


def judge_rounds(rounds: Sequence[float], min_speedup: float) -> RoundsVerdict:
    """FASTER where the median clears `min_speedup` and the lower bound clears the floor; SLOWER where the median
    misses the bar; UNCERTAIN otherwise. Settled where the other bound agrees (see the module docstring)."""
    if not rounds:
        raise ValueError("no timing rounds to judge")
    ordered = sorted(rounds)
    k = bound_rank(len(ordered))
    median, low, high = float(statistics.median(ordered)), ordered[k - 1], ordered[-k]
    floor = min(1.0, min_speedup)
    if median < min_speedup:
        outcome, settled = SLOWER, high < min_speedup
    elif low >= floor:
        outcome, settled = FASTER, True
    else:
        outcome, settled = UNCERTAIN, False
    return RoundsVerdict(tuple(rounds), min_speedup, median, low, high, outcome, settled)


def median_index(values: list[float]) -> int:
    """Where the median of `values` is: the lower of the middle two for an even count (a measured value, not a mean)."""
    return sorted(range(len(values)), key=values.__getitem__)[(len(values) - 1) // 2]


def uncertain_reason(verdict: RoundsVerdict, others_share: float | None) -> str:
    """E.g. "INT8's speedup is uncertain: its 6 timing rounds spread 0.90-1.55× FP32 (median 1.14×, 2 of them below
    1.00×) while other processes used 78% of the cores"."""
    below = verdict.below_floor
    load = "" if others_share is None else f" while other processes used {others_share:.0%} of the cores"
    return (
        f"INT8's speedup is uncertain: its {len(verdict.rounds)} timing rounds spread "
        f"{min(verdict.rounds):.2f}-{max(verdict.rounds):.2f}× FP32 (median {verdict.median:.2f}×, "
        f"{below} of them below {verdict.floor:.2f}×){load}"
    )


def uncertain_line(verdict: RoundsVerdict, others_share: float | None, drift: str = "") -> str:
    """The refusal: the reason, then what to do (a quiet machine's rounds settle it; --allow-slower ships it)."""
    return (
        f"{uncertain_reason(verdict, others_share)}; time again on a quiet machine, or deploy fp32 "
        f"(or pass --allow-slower){drift}"
    )


def sliver_reason(int8_mac_share: float, fp32_compute: Mapping[str, int]) -> str:
    """E.g. "only 0.03 % of multiply-adds are INT8 (LSTM ×3 stays FP32: ONNX Runtime has no INT8 LSTM kernel in
    static Q/DQ)"."""
    share = f"only {100 * int8_mac_share:.2g} % of multiply-adds are INT8"
    kept = list(fp32_compute)[:3]
    if not kept:
        return share
    names = ", ".join(f"{op} ×{fp32_compute[op]}" for op in kept)
    why = "; ".join(NO_STATIC_INT8[op] for op in kept if op in NO_STATIC_INT8)
    return f"{share} ({names} {'stays' if len(kept) == 1 else 'stay'} FP32{': ' + why if why else ''})"


def subgraph_note(fp32_compute: Mapping[str, int]) -> str:
    """E.g. "; MatMul ×1 in Loop body stays FP32 (ONNX Runtime's quantizer leaves Loop, Scan and If bodies FP32)":
    the compute `compute_share.subgraph_compute` found left FP32 inside subgraphs, whose share of the time the graph
    cannot say; "" where none. SLANet-plus' slow INT8 build said nothing of its FP32 decoder loop (session 67)."""
    inside = {label: count for label, count in fp32_compute.items() if " in " in label}
    if not inside:
        return ""
    names = ", ".join(label.replace(" in ", f" ×{count} in ", 1) for label, count in inside.items())
    verb = "stays" if list(inside.values()) == [1] else "stay"
    return f"; {names} {verb} FP32 (ONNX Runtime's quantizer leaves Loop, Scan and If bodies FP32)"


def drift_kept(stages: Iterable[Mapping[str, Any]]) -> str:
    """Where the INT8 search's mixed precision kept compute nodes FP32 to hold the drift budget, the words for it and
    for the fastest candidate that missed it, e.g. "the mixed-precision search kept 9 compute nodes FP32 to hold the
    drift budget (static_qdq, all of them INT8, ran 2.01× FP32 and missed it: output 'digit_1': top-1 agreement
    0.94 < budget 0.99)"; else where candidates faster than the one that held missed it, the words for those
    (`faster_missed`); "" where neither."""
    stages = list(stages)
    return _mixed_kept(stages) or faster_missed(stages)


def faster_missed(stages: Iterable[Mapping[str, Any]]) -> str:
    """Where the candidate that held was the slower one and candidates that quantized more ran faster than it, and
    than FP32, but missed the drift budget, e.g. "the faster INT8 builds missed the drift budget
    (static_qdq_conv_only ran 1.19× FP32 and missed it: output 'landmarks': worst channel correlation 0.7573 <
    budget 0.98)"; "" otherwise. face-api's landmark net shipped its MatMul alone in INT8 (0.061 % of the
    multiply-adds) and was told "INT8 cannot be faster here", where its INT8 convolutions ran 1.19× and broke its
    landmarks (session 63)."""
    for stage in stages:
        candidates = [c for c in stage.get("candidates") or [] if c.get("speedup") is not None]
        held = [float(c["speedup"]) for c in candidates if c.get("holds")]
        if not held:
            continue
        bar = max(1.0, max(held))
        missed = [c for c in candidates if not c.get("holds") and float(c["speedup"]) > bar]
        if not missed:
            continue
        fastest = max(missed, key=lambda c: float(c["speedup"]))
        why = f": {fastest['violations'][0]}" if fastest.get("violations") else ""
        ran = f"{fastest['scheme']} ran {float(fastest['speedup']):.2f}× FP32 and missed it{why}"
        return f"the faster INT8 build{'s' if len(missed) > 1 else ''} missed the drift budget ({ran})"
    return ""


def _mixed_kept(stages: Iterable[Mapping[str, Any]]) -> str:
    """`drift_kept`'s words where the mixed-precision search chose a mix that kept compute nodes FP32."""
    for stage in stages:
        mixed = stage.get("mixed_precision")
        if not isinstance(mixed, dict) or not mixed.get("chosen") or not mixed.get("kept_fp32"):
            continue
        missed = [c for c in stage.get("candidates") or [] if not c.get("holds") and c.get("speedup")]
        fastest = max(missed, key=lambda c: float(c["speedup"])) if missed else None
        # the scheme it started from, where that is not the miss named after it (session 46: "kept 1 compute nodes
        # FP32 … (dynamic ran 2.07× and missed it)" read as dynamic plus one FP32 node, where the mix began from
        # static_qdq_smooth, its LSTMs FP32 too)
        start = mixed.get("from_scheme")
        started = f" from {start}" if start and (fastest is None or fastest["scheme"] != start) else ""
        kept = len(mixed["kept_fp32"])
        words = (
            f"the mixed-precision search{started} kept {kept} compute node{'s' * (kept != 1)} FP32 to hold the drift "
            "budget"
        )
        if fastest is None:
            return words
        why = f": {fastest['violations'][0]}" if fastest.get("violations") else ""
        return f"{words} ({fastest['scheme']} ran {float(fastest['speedup']):.2f}× FP32 and missed it{why})"
    return ""
