"""Memory-access trace parsing."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.errors import SpecError
from dse.workloads.memtrace import parse_memtrace, summary


def test_timed_trace_with_optional_sizes_and_comments():
    text = """# cycle address op [size]
10 0x1000 R 64

20 0xdeadBEEF W      # a write of the default size
30 ffffffffffffffff read 128
"""
    df = parse_memtrace(text)
    assert list(df.columns) == ["time", "address", "is_write", "size"]
    assert df["time"].tolist() == [10, 20, 30]
    assert df["address"].tolist() == [0x1000, 0xDEADBEEF, 2**64 - 1]
    assert df["is_write"].tolist() == [False, True, False]
    assert df["size"].tolist() == [64, 64, 128]
    assert df.attrs["timed"] is True


def test_untimed_ramulator_style_trace_numbers_the_accesses():
    df = parse_memtrace("0x12345680 R\n0x4cbd56c0 W\n0x35d46f00 R\n", default_size=32)
    assert df["time"].tolist() == [0, 1, 2] and df.attrs["timed"] is False
    assert df["address"].tolist() == [0x12345680, 0x4CBD56C0, 0x35D46F00]
    assert df["size"].tolist() == [32, 32, 32]


def test_fractional_times_are_kept():
    assert parse_memtrace("0.5 0x40 R\n1.25 0x80 W\n")["time"].tolist() == [0.5, 1.25]


def test_summary_counts_bytes_by_direction():
    df = parse_memtrace("1 0x0 R 64\n2 0x40 R 64\n3 0x80 W 128\n9 0x0 W\n")
    s = summary(df)
    assert (s["reads"], s["writes"]) == (2, 2)
    assert (s["read_bytes"], s["write_bytes"], s["bytes"]) == (128, 192, 320)
    assert s["time_span"] == 8 and s["distinct_lines"] == 3


@pytest.mark.parametrize("bad, line, words", [
    ("10 0x1000 X\n", 3, "R or W"),
    ("10 0xZZ R\n", 3, "hex address"),
    ("10 0x11112222333344445 R\n", 3, "64 bits"),
    ("ten 0x10 R\n", 3, "time"),
    ("10 0x10 R 64 extra\n", 3, "at most 4 fields"),
    ("10 0x10 R -8\n", 3, "size"),
    ("10 0x10\n", 3, "expected"),
])
def test_bad_lines_are_reported_with_their_line_number(bad, line, words):
    text = "# header\n1 0x0 R\n" + bad + "20 0x40 W\n"
    with pytest.raises(SpecError) as e:
        parse_memtrace(text, where="t.trace")
    assert e.value.where == f"t.trace:{line}" and words in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        parse_memtrace(tmp_path / "none.trace")


def test_a_million_lines_parse_exactly(tmp_path):
    # (how fast: benchmarks/bench_memtrace.py; tests never assert wall-clock times)
    n = 1_000_000
    rng = np.random.default_rng(0)
    addr = rng.integers(0, 2**48, n, dtype=np.uint64)
    writes = rng.random(n) < 0.25
    path = tmp_path / "big.trace"
    with path.open("w") as f:
        f.writelines(f"{i} 0x{a:x} {'W' if w else 'R'}\n" for i, (a, w) in enumerate(zip(addr, writes)))
    df = parse_memtrace(path)
    assert len(df) == n
    assert np.array_equal(df["address"].to_numpy(), addr)
    assert summary(df)["write_bytes"] == 64 * int(writes.sum())


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.booleans(), st.booleans(), st.booleans()),
                min_size=1, max_size=50))
@settings(max_examples=60, deadline=None)
def test_any_64_bit_address_round_trips_in_any_hex_spelling(rows):
    lines = [f"{'0x' if prefix else ''}{(f'{a:X}' if upper else f'{a:x}')} {'W' if w else 'R'}"
             for a, prefix, upper, w in rows]
    df = parse_memtrace("\n".join(lines) + "\n")
    assert df["address"].tolist() == [a for a, *_ in rows]
    assert df["is_write"].tolist() == [w for *_, w in rows]
