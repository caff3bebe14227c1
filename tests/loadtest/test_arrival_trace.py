"""Recorded arrivals: the two file forms, their errors, the replay schedule and how processes share it."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.arrival_trace import ArrivalTrace, read_trace
from loadtest.load_flags import pattern_from_flags
from loadtest.load_pattern import OpenLoop, TraceReplay
from quantserve.errors import QuantserveError


def test_perf_analyzer_intervals_are_gaps_in_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "intervals.txt"
    path.write_text("# from perf_analyzer\n100000\n300000\n\n600000\n")
    trace = read_trace(path)
    np.testing.assert_allclose(trace.offsets_s, [0.0, 0.1, 0.4])
    assert trace.period_s == pytest.approx(1.0)  # the last gap leads into the next pass
    assert trace.mean_rate_rps == pytest.approx(3.0)
    twice = read_trace(path, speed=2.0)
    np.testing.assert_allclose(twice.offsets_s, [0.0, 0.05, 0.2])
    assert twice.mean_rate_rps == pytest.approx(6.0)


def test_csv_timestamps_in_seconds_or_date_times(tmp_path: Path) -> None:
    seconds = tmp_path / "seconds.csv"
    seconds.write_text("request_id,Timestamp,tokens\n1,100.5,3\n3,101.5,9\n2,100.0,4\n")  # unsorted rows
    trace = read_trace(seconds)
    np.testing.assert_allclose(trace.offsets_s, [0.0, 0.5, 1.5])
    assert trace.period_s == pytest.approx(1.5 * 3 / 2)  # the span plus one mean gap
    millis = tmp_path / "millis.txt"  # a unit in the column's name; a one-column CSV needs no .csv suffix
    millis.write_text("timestamp_ms\n1000\n1250\n2000\n")
    np.testing.assert_allclose(read_trace(millis).offsets_s, [0.0, 0.25, 1.0])
    azure = tmp_path / "azure.csv"  # the form of Azure's public inference traces: 7 fractional digits
    azure.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,10\n2023-11-16 18:15:47.1805900,4\n")
    np.testing.assert_allclose(read_trace(azure).offsets_s, [0.0, 0.5])


def test_zoned_date_times_and_epoch_numbers_in_any_unit(tmp_path: Path) -> None:
    """Cloud and JSON logs write UTC with a Z or an offset; Date.now() and tracing spans write epoch milliseconds or
    nanoseconds under a unit-less name (numbers too large to be Unix seconds)."""
    zoned = tmp_path / "zoned.csv"
    zoned.write_text("time\n2024-05-01T12:00:00.123Z\n2024-05-01T14:00:00.623+02:00\n2024-05-01T11:00:01-01:00\n")
    np.testing.assert_allclose(read_trace(zoned).offsets_s, [0.0, 0.5, 0.877])
    for scale in (1e3, 1e6, 1e9):  # ms, µs, ns since 1970
        epoch = tmp_path / f"epoch{int(scale)}.csv"
        epoch.write_text("timestamp\n" + "\n".join(f"{int((1714560000 + t) * scale)}" for t in (0.0, 0.25, 2.0)))
        np.testing.assert_allclose(read_trace(epoch).offsets_s, [0.0, 0.25, 2.0], atol=1e-6)
    seconds = tmp_path / "unix_seconds.csv"
    seconds.write_text("timestamp\n1714560000.0\n1714560000.5\n")
    np.testing.assert_allclose(read_trace(seconds).offsets_s, [0.0, 0.5])


def test_a_count_or_rate_per_interval_becomes_that_many_arrivals_inside_each(tmp_path: Path) -> None:
    """Aggregated logs: arrivals fall inside their interval, as many as counted; the last interval is the
    median width; fractional expected counts carry over; the same file replays the same arrivals."""
    counts = tmp_path / "per_second.csv"
    counts.write_text("time,count\n0,2\n1,0\n2,3\n")
    trace = read_trace(counts)
    assert trace.requests == 5 and trace.period_s == pytest.approx(3.0)
    assert np.histogram(trace.offsets_s, bins=[0, 1, 2, 3])[0].tolist() == [2, 0, 3]
    np.testing.assert_array_equal(read_trace(counts).offsets_s, trace.offsets_s)
    rate = tmp_path / "rate.csv"  # a dashboard export: requests per second over 2 s intervals, minutes apart
    rate.write_text("timestamp,rps\n2023-11-16 18:00:00,2.5\n2023-11-16 18:00:02,0.5\n")
    trace = read_trace(rate)
    assert trace.requests == 6 and trace.period_s == pytest.approx(4.0)  # 2.5/s × 2 s, then 0.5/s × 2 s
    assert np.histogram(trace.offsets_s, bins=[0, 2, 4])[0].tolist() == [5, 1]
    sparse = tmp_path / "sparse.csv"
    sparse.write_text("time,rate\n0,0.5\n1,0.5\n2,0.5\n3,0.5\n")
    assert np.histogram(read_trace(sparse).offsets_s, bins=[0, 1, 2, 3, 4])[0].tolist() == [0, 1, 0, 1]


def test_json_lines_and_azure_functions_per_minute_counts(tmp_path: Path) -> None:
    """Mooncake-style JSON lines (milliseconds under `timestamp`: --trace-speed 1000 replays them in real time,
    lists in other fields ignored) and Azure Functions' invocations per function per minute, summed."""
    jsonl = tmp_path / "mooncake.jsonl"
    jsonl.write_text(
        '{"timestamp": 0, "input_length": 6955, "hash_ids": [46, 47]}\n'
        '{"timestamp": 500, "input_length": 6472, "hash_ids": [46]}\n\n'
        '{"timestamp": 2000, "input_length": 6940, "hash_ids": []}\n'
    )
    np.testing.assert_allclose(read_trace(jsonl, speed=1000.0).offsets_s, [0.0, 0.5, 2.0])
    sized = tmp_path / "sized.log"  # no suffix needed: the first line is a JSON object
    sized.write_text('{"time": 1.0, "batch_size": 4}\n{"time": 1.5, "batch_size": 1}\n')
    assert read_trace(sized).sizes.tolist() == [4, 1]  # type: ignore[union-attr]
    minutes = tmp_path / "invocations_per_function_md.anon.d01.csv"
    minutes.write_text("HashOwner,HashApp,HashFunction,Trigger,1,2,3\na,b,f1,http,2,0,1\na,b,f2,timer,1,0,0\n")
    trace = read_trace(minutes)
    assert trace.requests == 4 and trace.period_s == pytest.approx(180.0)
    assert np.histogram(trace.offsets_s, bins=[0, 60, 120, 180])[0].tolist() == [3, 0, 1]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"timestamp": 0}\n[1, 2]\n')
    with pytest.raises(QuantserveError, match=r"broken\.jsonl line 2: '\[1, 2\]' is not a JSON object"):
        read_trace(broken)
    wide = tmp_path / "wide.csv"  # a header of many columns is named in part
    wide.write_text(",".join(f"c{i}" for i in range(40)) + "\n" + ",".join("1" for _ in range(40)) + "\n")
    with pytest.raises(QuantserveError, match=r"found: c0, c1, .*, c11, … \(40 columns\)\)$"):
        read_trace(wide)


def test_a_request_size_column_gives_each_arrival_its_samples(tmp_path: Path) -> None:
    sized = tmp_path / "sized.csv"
    sized.write_text("time,batch_size\n0.2,8\n0.0,1\n0.1,32\n")  # rows unsorted: sizes follow their arrivals
    trace = read_trace(sized)
    assert trace.sizes is not None and trace.sizes.tolist() == [1, 32, 8]
    first = list(itertools.islice(trace.arrivals(), 4))  # looped: the 4th is the next pass's first
    assert [size for _, size in first] == [1, 32, 8, 1]
    np.testing.assert_allclose([offset for offset, _ in first], [0.0, 0.1, 0.2, 0.3])
    summary = trace.summary(1.0)
    assert summary["max_request_samples"] == 32 and summary["request_sizes"] == 3
    assert summary["mean_request_samples"] == pytest.approx(41 / 3, abs=1e-3)
    plain = tmp_path / "plain.csv"
    plain.write_text("time\n0\n1\n")
    assert read_trace(plain).sizes is None and next(read_trace(plain).arrivals()) == (0.0, 0)  # 0: --request-batch


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.txt", "# nothing\n\n", "no arrivals in it"),
        ("words.txt", "100\nfast\n", "line 2: 'fast' is not a gap in microseconds"),
        ("negative.txt", "100\n-5\n", "line 2: gap -5 µs is not a number >= 0"),
        ("zero.txt", "0\n0\n", "the gaps add up to 0 µs"),
        (
            "nocolumn.csv",
            "id,size\n1,2\n",
            "no arrival-time column (looked for timestamp, time, arrival_time, arrival; found: id, size)",
        ),
        ("one.csv", "time\n1.0\n", "1 arrival(s); a replay needs at least 2"),
        ("same.csv", "time\n1.0\n1.0\n", "every arrival has the same time"),
        ("bad.csv", "time\n1.0\nyesterday\n", "line 3: time 'yesterday' is not a number of seconds (as the first row)"),
        ("day.csv", "time\n2023-11-16 18:15:46\n5\n", "line 3: time '5' is not a date-time (as the first row)"),
        ("nan.csv", "time\n1.0\nnan\n", "line 3: time 'nan' is not a finite number of seconds"),
        ("negative.csv", "time,count\n0,3\n1,-2\n", "line 3: count '-2' is not a number >= 0"),
        ("once.csv", "time,requests\n0,40\n", "a requests per interval needs 2 or more rows at distinct times"),
        ("few.csv", "time,count\n0,1\n1,0\n", "1 arrival(s) in all; a replay needs at least 2"),
        ("zero.csv", "time,samples\n0,1\n1,0\n", "line 3: samples '0' is not a whole number of samples from 1"),
        ("noted.csv", "# from the gateway log\ntime\n\n1.0\nsoon\n", "line 5: time 'soon' is not a number of seconds"),
        ("late.jsonl", '{"timestamp": 0}\n{"timestamp": "soon"}\n', "line 2: timestamp 'soon' is not a number"),
    ],
)
def test_a_bad_trace_is_one_line_naming_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(QuantserveError, match="--trace .*" + name) as caught:
        read_trace(path)
    assert message in str(caught.value)


def test_a_missing_trace_or_a_bad_speed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"absent\.txt: no such file"):
        read_trace(tmp_path / "absent.txt")
    (tmp_path / "t.txt").write_text("1000\n")
    with pytest.raises(QuantserveError, match="--trace-speed must be a finite number above 0, got 0"):
        read_trace(tmp_path / "t.txt", speed=0.0)


def test_the_summary_shows_the_bursts() -> None:
    # 10 arrivals in the first 0.1 s of a 2 s pass: mean 5/s, a 1 s window holds all 10
    trace = ArrivalTrace("t", np.linspace(0.0, 0.09, 10), 2.0)
    summary = trace.summary(speed=1.0)
    assert summary["mean_rate_rps"] == 5.0 and summary["peak_rate_rps_1s"] == 10.0
    assert summary["gap_cv"] > 2.0  # bursty; even gaps read 0
    assert ArrivalTrace("even", np.arange(4) * 0.25, 1.0).gap_cv() == pytest.approx(0.0)


def test_the_busiest_second_of_a_pass_shorter_than_a_second_counts_every_pass_in_it() -> None:
    """Two arrivals 0.01 s apart, looped: 100 a second, 200 in the busiest; it read "4/s", under the mean."""
    short = ArrivalTrace("short", np.array([0.0, 0.01]), 0.02)
    assert short.mean_rate_rps == pytest.approx(100.0) and short.peak_rate_rps() == pytest.approx(100.0)
    bursty = ArrivalTrace("bursty", np.array([0.0, 0.001, 0.002]), 0.4)  # 3 at once every 0.4 s
    assert bursty.peak_rate_rps() == pytest.approx(9.0)  # three passes start within any second: 9 arrivals
    assert ArrivalTrace("fast", np.array([0.0, 1e-8]), 2e-8).peak_rate_rps() == pytest.approx(1e8)


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=20),
    shares=st.integers(1, 5),
    passes=st.integers(1, 3),
)
def test_the_processes_share_every_arrival_once_at_its_time(offsets: list[float], shares: int, passes: int) -> None:
    """Process i of n fires arrivals i, i + n, …: together exactly the looped trace, each in time order."""
    times = np.sort(np.asarray(offsets))
    trace = ArrivalTrace("t", times - times[0], float(times[-1] - times[0]) + 1.0)
    count = passes * trace.requests
    looped = [p * trace.period_s + t for p in range(passes) for t in trace.offsets_s]
    fired = []
    for share in range(shares):
        mine = list(itertools.islice(trace.schedule(share, shares), len(range(share, count, shares))))
        assert mine == sorted(mine)
        fired += mine
    assert sorted(fired) == pytest.approx(sorted(looped))


def test_the_trace_flag_is_one_open_loop_step(tmp_path: Path) -> None:
    path = tmp_path / "morning.txt"
    path.write_text("50000\n150000\n")
    step = pattern_from_flags(16, trace=str(path), trace_speed=2.0)
    assert step == TraceReplay(str(path), 2.0) and step.name == "trace-morning-x2"
    step.check()
    recorded = step.recorded(workers=3)
    assert recorded["mode"] == "open" and recorded["users"] == 3 and recorded["arrivals"] == "trace"
    assert recorded["rate_rps"] == pytest.approx(20.0)  # 2 arrivals a 0.2 s pass, twice as fast
    assert recorded["trace"]["file"] == str(path)
    options = step.locust_options()
    assert options[options.index("--trace") + 1] == str(path.resolve()) and "--trace-speed" in options
    with pytest.raises(QuantserveError, match="--trace replays the file's own arrivals; drop --rate and --sweep"):
        pattern_from_flags(16, sweep="1,2", rate="50", trace=str(path))
    assert pattern_from_flags(16, rate="50") == OpenLoop(50.0)
    with pytest.raises(QuantserveError, match="no arrivals"):
        (tmp_path / "empty.txt").write_text("")
        TraceReplay(str(tmp_path / "empty.txt")).check()


def test_a_scaled_trace_keeps_its_shape_at_a_share_of_its_rate(tmp_path: Path) -> None:
    """--trace-scale: counts per interval multiplied before placing (Azure's per-minute sums: billions a day),
    a row-per-request trace thinned the same way in every process; the step is named and records it."""
    counts = tmp_path / "busy.csv"
    counts.write_text("time,count\n0,20000000\n60,0\n120,40000000\n")  # 60 M arrivals: more than any replay holds
    with pytest.raises(QuantserveError, match="more than 10000000 \\(a smaller --trace-scale thins it\\)"):
        read_trace(counts)
    scaled = read_trace(counts, scale=1e-5)
    assert scaled.requests == 600 and scaled.period_s == pytest.approx(180.0)
    assert np.histogram(scaled.offsets_s, bins=[0, 60, 120, 180])[0].tolist() == [200, 0, 400]
    assert read_trace(counts, scale=2e-5).requests == 1200  # counts may be multiplied up too
    rows = tmp_path / "rows.csv"
    rows.write_text("time\n" + "\n".join(f"{t:.3f}" for t in np.sort(RNG_TIMES)) + "\n")
    whole, tenth = read_trace(rows), read_trace(rows, scale=0.1)
    assert 150 <= tenth.requests <= 250 and tenth.period_s == whole.period_s  # 2 000 rows, about 200 kept
    assert set(np.round(tenth.offsets_s, 3)) <= set(np.round(whole.offsets_s, 3))
    np.testing.assert_array_equal(read_trace(rows, scale=0.1).offsets_s, tenth.offsets_s)  # every process alike
    with pytest.raises(QuantserveError, match="--trace-scale 2 above 1 needs a count per interval"):
        read_trace(rows, scale=2.0)
    with pytest.raises(QuantserveError, match="--trace-scale must be a positive number, got 0"):
        read_trace(rows, scale=0.0)
    step = pattern_from_flags(16, trace=str(rows), trace_scale=0.1)
    assert step.name == "trace-rows-s0.1" and step.recorded(workers=1)["trace"]["scale"] == 0.1
    options = step.locust_options()
    assert options[options.index("--trace-scale") + 1] == "0.1"


RNG_TIMES = np.random.default_rng(3).uniform(0.0, 100.0, size=2000)


def test_a_trace_replays_once_by_default(tmp_path: Path) -> None:
    """`loadtest --trace` without --duration plays one pass of the trace (whole seconds); else 60 s."""
    from quantserve.cli.commands.loadtest import default_duration

    path = tmp_path / "t.txt"
    path.write_text("600000\n900000\n")  # a 1.5 s pass
    assert default_duration(TraceReplay(str(path))) == "2s"
    assert default_duration(TraceReplay(str(path), speed=3.0)) == "1s"
    assert default_duration(OpenLoop(50.0)) == "60s"


# --- a speed that leaves no time, and rows that cannot be replayed: one line before any load ---------------


@pytest.mark.parametrize(
    ("rows", "speed", "message"),
    [
        ("0\n1\n2\n", math.inf, "--trace-speed must be a finite number above 0, got inf"),
        ("0\n1\n2\n", math.nan, "--trace-speed must be a finite number above 0, got nan"),
        ("0\n1e-300\n", 1e300, "a pass of 2e-300 s at --trace-speed 1e+300 lasts 0 s"),
        ("0\n1e-300\n", 1e10, "a pass of 2e-300 s at --trace-speed 1e+10 lasts 2e-310 s"),  # n / 2e-310 s: inf
        ("0\n1e308\n", 1.0, "a pass of inf s at --trace-speed 1 lasts inf s"),  # span × 2 / 1 overflows
    ],
)
def test_a_speed_that_leaves_a_pass_no_time_is_refused_up_front(
    tmp_path: Path, rows: str, speed: float, message: str
) -> None:
    """--trace-speed inf (or 1e300 over arrivals 1e-300 s apart) made a pass of 0 s: the whole load ran, then the
    mean rate divided by zero and the results were lost."""
    path = tmp_path / "t.csv"
    path.write_text("timestamp\n" + rows)
    with pytest.raises(QuantserveError) as refused:
        read_trace(path, speed=speed)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_loadtest_and_tune_refuse_an_infinite_speed_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both commands read the trace through `read_trace` before any server is asked anything: exit 2, one line."""
    import loadtest_models as models

    from quantserve.cli import main

    trace = tmp_path / "t.csv"
    trace.write_text("timestamp\n0\n1\n2\n")
    data = models.labeled_data(8, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    build = models.make_build_dir(tmp_path / "build" / "mlp_fp32")
    speed = ["--trace", str(trace), "--trace-speed", "inf"]
    load = ["loadtest", "--url", "127.0.0.1:1", "--model", "m", "--data", str(data), "--out", str(tmp_path / "lt")]
    tune = ["tune", str(build), "--data", str(data), "--slo-p99-ms", "50", "--name", "m", "--out", str(tmp_path / "t")]
    for command in (load, [*load, "--duration", "2s"], [*tune, "--repo", str(tmp_path / "repo")]):
        capsys.readouterr()
        assert main([*command, *speed]) == 2
        err = capsys.readouterr().err
        assert err.strip() == "quantserve: error: --trace-speed must be a finite number above 0, got inf", err


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (  # 1e300 × 1 s overflowed int64: "-9223372036854775808 arrival(s) in all"
            "huge_rate.csv",
            "timestamp,rate\n0,1e300\n1,1\n",
            " line 2: rate '1e300' over its 1 s interval is 1e+300 arrivals, more than 10000000",
        ),
        (
            "huge_count.csv",
            "timestamp,count\n0,5\n1,1e19\n",
            " line 3: count '1e19' over its 1 s interval is 1e+19 arrivals, more than 10000000",
        ),
        (
            "long_interval.csv",
            "timestamp,rps\n0,1\n1e300,1\n",
            " line 2: rps '1' over its 1e+300 s interval is 1e+300 arrivals, more than 10000000",
        ),
        (
            "zone.csv",
            "timestamp\n2023-11-16 18:15:46.1+99:99\n2023-11-16 18:15:47\n",
            " line 2: timestamp '2023-11-16 18:15:46.1+99:99' has zone +99:99, not one from -23:59 to +23:59",
        ),
        (
            "zone_minutes.csv",
            "time\n2024-05-01T12:00:00Z\n2024-05-01T12:00:01+05:75\n",
            " line 3: time '2024-05-01T12:00:01+05:75' has zone +05:75, not one from -23:59 to +23:59",
        ),
        (  # Azure Functions' counts per minute, summed over the functions
            "invocations_per_function.csv",
            "HashFunction,1,2\nf,1e300,1\ng,1,1\n",
            ": minute 1's count 1e+300 (summed over the rows) over its 60 s interval is 1e+300 arrivals",
        ),
        (
            "bad_size.csv",
            "timestamp,count,batch_size\n0,5,64\n1,5,0\n",
            " line 3: batch_size '0' is not a whole number of samples from 1 to 4096",
        ),
    ],
)
def test_a_row_that_cannot_be_replayed_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)
    assert f"--trace {path}{message}" in str(refused.value)


def test_a_request_size_beside_a_count_gives_each_counted_arrival_its_samples(tmp_path: Path) -> None:
    """`batch_size` beside `count` was dropped without a word; each arrival of a row's interval now carries it."""
    path = tmp_path / "sized_counts.csv"
    path.write_text("timestamp,count,batch_size\n0,3,64\n1,2,8\n2,1,1\n")
    trace = read_trace(path)
    assert trace.requests == 6 and trace.sizes is not None
    in_second = np.floor(trace.offsets_s).astype(int)
    assert trace.sizes.tolist() == [[64, 8, 1][second] for second in in_second]
    assert sorted(trace.sizes.tolist()) == [1, 8, 8, 64, 64, 64]
    scaled = read_trace(path, scale=2.0)  # counts multiplied: the sizes follow their rows
    assert sorted(scaled.sizes.tolist()) == [1, 1] + [8] * 4 + [64] * 6  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=2, max_size=60, unique=True),
    extra=st.booleans(),
)
def test_a_timestamp_column_is_read_exactly_as_written(tmp_path_factory, times: list[float], extra: bool) -> None:
    """The column reader (a whole column at once) gives each row's own time, sorted, from its own column."""
    path = tmp_path_factory.mktemp("h") / "t.csv"
    header = "id,timestamp,note" if extra else "timestamp"
    rows = [f'{i},{t!r},"a, b"' if extra else repr(t) for i, t in enumerate(times)]
    path.write_text("\n".join([header, *rows]) + "\n")
    expected = np.sort(np.asarray(times, dtype=np.float64))
    np.testing.assert_allclose(read_trace(path).offsets_s, expected - expected[0], rtol=0, atol=1e-9)
