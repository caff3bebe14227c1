"""A trace column the reader does not use whose name is a near miss of one it reads is refused, naming both: a
`batch_sise` column beside --request-batch 4 replayed every request at 4 samples without a word (session 52), where
`batch_size` set each request's samples. Other columns stay ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


def test_a_size_column_misspelt_is_refused_naming_the_known_name(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("timestamp,batch_sise\n0.0,32\n0.5,8\n1.0,1\n")
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)
    assert str(refused.value) == f"--trace {path}: column 'batch_sise' is not read; did you mean 'batch_size'?"


def test_a_near_miss_of_a_count_or_time_column_is_refused_too(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("time,Reqeusts\n0,5\n1,6\n")
    with pytest.raises(QuantserveError, match="column 'Reqeusts' is not read; did you mean 'requests'"):
        read_trace(counts)
    unit = tmp_path / "unit.csv"
    unit.write_text("timestamp,arrival_tme_ms\n0,5\n1,6\n")
    with pytest.raises(QuantserveError, match="column 'arrival_tme_ms' is not read; did you mean 'arrival_time_ms'"):
        read_trace(unit)


def test_other_columns_stay_ignored(tmp_path: Path) -> None:
    path = tmp_path / "llm.csv"
    path.write_text("timestamp,model,requestId,prompt_tokens,hash_ids,Log Type,time\n0,a,1,5,x,y,9\n1,b,2,6,x,y,3\n")
    trace = read_trace(path)  # `time`, a name the reader knows, is not a near miss: it is not the one it read
    assert trace.requests == 2 and trace.sizes is None
