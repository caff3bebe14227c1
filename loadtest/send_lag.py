"""The note on open-loop requests that left the client late: their latency then includes a wait the server never
saw (the generator's CPU, or every in-flight slot taken), so the figures are the client's too. A pure function of a
result's recorded lags (`loadtest.results.LoadResult.send_lag_note` calls it), apart so results.py stays readable.
"""

from __future__ import annotations


def send_lag_note(
    label: str,
    lags: tuple[float | None, float | None, float | None],
    slots: tuple[int | None, int | None],
    late_ms: float,
) -> str | None:
    """One line when requests left the client over `late_ms` late at p99 (`lags`: send lag p50 and p99, and the
    generator's own p99; `slots`: the most in flight at once, and the limit), naming which part of the client held
    them."""
    p50, p99, generator_p99 = lags
    peak, max_in_flight = slots
    if p99 is None or not p99 > late_ms:
        return None
    head = (
        f"{label}: requests left the client up to {p99:.0f} ms after their arrival time "
        f"(p99; p50 {p50 or 0.0:.1f} ms), and their latencies include that wait: "
    )
    generator = generator_p99 or 0.0
    if generator > late_ms and generator >= p99 / 2:  # the larger part of the wait
        return head + (
            f"the load generator fell behind its schedule (p99 {generator:.0f} ms late, its CPU); "
            "spread the load (--workers N) or run the client on another machine"
        )
    if peak and max_in_flight and peak < max_in_flight:
        return head + (
            f"at most {peak} of its {max_in_flight} in-flight slots were in use, so the wait "
            "was the client's own threads taking the calls up late (its CPU, shared here with the server); "
            "run the load from another machine, or read these latencies as the client's too"
        )
    taken = f"all {max_in_flight}" if max_in_flight else "all"
    return head + (
        f"{taken} in-flight slots were taken, so requests waited for a free in-flight slot (the generator itself "
        f"was {generator:.0f} ms late at p99): the server answered slower than the offered rate; raise "
        "--max-in-flight or lower the rate"
    )
