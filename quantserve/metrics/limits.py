"""A measured value read against its limit (a drift budget, a minimum speedup): whether it misses it, a float's
rounding at the limit not counted, and how to print it so that it reads on the side of the limit it lies on.
"""


def beside_bar(speedup: float, bar: float) -> str:
    """`speedup` with 2 decimals, or as many more as keep it on its side of `bar`: 1.0999 read "1.10× FP32 here,
    below --min-speedup 1.1" (session 40); it reads "1.0999×"."""
    return on_its_side(speedup, bar, 2, "f")


def on_its_side(value: float, bar: float, digits: int, style: str) -> str:
    """`value` formatted `{:.<digits><style>}`, or with as many more digits as it takes not to read as equal to, or
    on the other side of, `bar` (up to 9; past that, its repr)."""
    for more in range(digits, 10):
        text = f"{value:.{more}{style}}"
        if (float(text) < bar) == (value < bar) and (float(text) == bar) == (value == bar):
            return text
    return repr(value)


FLOAT_SLACK = 1e-9  # relative: an accuracy drop of exactly 1 point computed as 1.0000000000000009 (session 44)


def beyond(value: float, limit: float, higher_is_better: bool) -> bool:
    """Whether `value` misses `limit`, a float's rounding at the limit not counted: 562 of 600 against 556 of 600 is
    a drop of exactly 1 point, which `100 * (fp32 - int8)` gives as 1.0000000000000009 and was refused against ≤ 1."""
    slack = FLOAT_SLACK * max(1.0, abs(limit))
    return value < limit - slack if higher_is_better else value > limit + slack
