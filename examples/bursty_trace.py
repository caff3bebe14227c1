"""Write a bursty arrival trace in perf_analyzer's `--request-intervals` form, for `loadtest --trace`.

An on/off Poisson process (a two-state MMPP, the usual stand-in for bursty production traffic): `--quiet`
requests/s, then `--burst` requests/s for `--burst-s` seconds every `--period-s`, Poisson arrivals in each.
The mean rate is printed, so the same mean can be offered evenly (`--rate`) beside it. With `--sizes`
each request also gets a size drawn from a mix (samples:share, …), and the trace is written as a CSV
(`time,batch_size`) instead: clients that send 1 sample one moment and 64 the next.

    python -m examples.bursty_trace --out reports/bursty.txt --quiet 40 --burst 400 --burst-s 1 --period-s 5
    python -m examples.bursty_trace --out reports/mixed.csv --quiet 150 --burst 150 --sizes 1:0.6,8:0.25,32:0.1,64:0.05
"""

from __future__ import annotations

import argparse

import numpy as np


def bursty_gaps_us(
    quiet: float, burst: float, burst_s: float, period_s: float, seconds: float, seed: int
) -> np.ndarray:
    """Gaps in µs between arrivals of the on/off process over `seconds` (one pass of the trace)."""
    rng = np.random.default_rng(seed)
    times, start = [], 0.0
    while start < seconds:
        for rate, length in ((burst, burst_s), (quiet, period_s - burst_s)):
            count = rng.poisson(rate * length)
            times.append(start + np.sort(rng.uniform(0.0, length, count)))
            start += length
    arrivals = np.concatenate(times)
    arrivals = arrivals[arrivals < seconds]
    # the gap after each request (perf_analyzer's form); the last one leads into the next pass's first
    return np.diff(np.append(arrivals, seconds + arrivals[0])) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--quiet", type=float, default=40.0, help="requests/s between bursts")
    parser.add_argument("--burst", type=float, default=400.0, help="requests/s in a burst")
    parser.add_argument("--burst-s", type=float, default=1.0)
    parser.add_argument("--period-s", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of one pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="", help="request sizes and their shares, e.g. 1:0.6,8:0.3,64:0.1 (CSV out)")
    args = parser.parse_args()
    gaps = bursty_gaps_us(args.quiet, args.burst, args.burst_s, args.period_s, args.seconds, args.seed)
    if args.sizes:
        write_sized(args.out, gaps, args.sizes, args.seed)
        return
    with open(args.out, "w") as handle:
        handle.write(f"# on/off Poisson: {args.quiet:g}/s, bursts of {args.burst:g}/s for {args.burst_s:g} s "
                     f"every {args.period_s:g} s; gaps in µs\n")  # fmt: skip
        handle.writelines(f"{gap:.0f}\n" for gap in gaps)
    print(
        f"{args.out}: {len(gaps)} arrivals in {gaps.sum() / 1e6:.1f} s, mean {len(gaps) / (gaps.sum() / 1e6):.1f} req/s"
    )


def write_sized(out: str, gaps_us: np.ndarray, mix: str, seed: int) -> None:
    """The arrivals as `time,batch_size` rows, each size drawn from `mix` ("samples:share,…", shares normalized)."""
    pairs = [item.split(":") for item in mix.split(",")]
    sizes = np.array([int(size) for size, _ in pairs])
    shares = np.array([float(share) for _, share in pairs])
    drawn = np.random.default_rng(seed + 1).choice(sizes, size=len(gaps_us), p=shares / shares.sum())
    times = np.concatenate([[0.0], np.cumsum(gaps_us[:-1]) / 1e6])
    with open(out, "w") as handle:
        handle.write("time,batch_size\n")
        handle.writelines(f"{t:.6f},{n}\n" for t, n in zip(times, drawn, strict=True))
    seconds = gaps_us.sum() / 1e6
    print(
        f"{out}: {len(times)} arrivals in {seconds:.1f} s, mean {len(times) / seconds:.1f} req/s, "
        f"{drawn.mean():.2f} samples a request ({drawn.sum() / seconds:.0f} samples/s)"
    )


if __name__ == "__main__":
    main()
