"""Replaying memory-access traces against technology models: numbers from the timing tables."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from dse.sim.replay import replay
from dse.spec.architecture import MemoryTier
from dse.tech.models import tier_model
from dse.units import to_si
from dse.workloads.memtrace import parse_memtrace

TECH = yaml.safe_load(resources.files("dse.tech.data").joinpath("memories.yaml").read_text())["technologies"]
N = 200_000


def t(tech, key):
    return to_si(TECH[tech]["timing"][key], "time")


def model(tech, units=1):
    return tier_model(MemoryTier(name="m", technology=tech, channels=units))


def trace(addresses, writes=False, size=64):
    n = len(addresses)
    return pd.DataFrame({"time": np.arange(n), "address": np.asarray(addresses, dtype=np.uint64),
                         "is_write": np.full(n, writes), "size": np.full(n, size)})


SEQ = trace(np.arange(N, dtype=np.uint64) * 64)
RND = trace(np.random.default_rng(1).integers(0, 2**33, N, dtype=np.uint64) // 64 * 64)


def test_ddr4_stream_near_peak_random_limited_by_activations():
    peak = 25.6e9
    seq, rnd = replay(SEQ, model("ddr4-3200")), replay(RND, model("ddr4-3200"))
    refresh = 1 - t("ddr4-3200", "tRFC") / t("ddr4-3200", "tREFI")
    assert seq["achieved_bandwidth_bps"] == pytest.approx(peak * refresh, rel=1e-6)
    assert seq["row_hit_rate"] == pytest.approx(1 - 64 / 8192, abs=1e-3)   # one miss per 8 KiB row
    rate = min(16 / t("ddr4-3200", "tRC"), 1 / t("ddr4-3200", "tRRD_S"), 4 / t("ddr4-3200", "tFAW"))
    assert rnd["achieved_bandwidth_bps"] == pytest.approx(rate * 64 * refresh, rel=0.01)
    assert rnd["row_hit_rate"] < 0.01


def test_optane_buffers_sequential_64b_reads_but_random_ones_fetch_256b_each():
    rd = to_si(TECH["optane-pmem"]["read_bandwidth"], "bandwidth")
    wr = to_si(TECH["optane-pmem"]["write_bandwidth"], "bandwidth")
    m = model("optane-pmem")
    assert replay(SEQ, m)["achieved_bandwidth_bps"] == pytest.approx(rd, rel=1e-6)
    assert replay(RND, m)["achieved_bandwidth_bps"] == pytest.approx(rd * 64 / 256, rel=1e-3)
    # random 64 B writes: each rewrites a 256 B block after reading it
    w = replay(trace(RND["address"], writes=True), m)
    assert w["time_s"] == pytest.approx(N * (256 / wr + 256 / rd), rel=1e-3)
    assert w["media_bytes_written"] == pytest.approx(N * 256, rel=1e-3)


def test_replay_of_a_parsed_text_trace(tmp_path):
    p = tmp_path / "t.trace"
    p.write_text("# cycle address op\n0 0x0 R\n1 0x40 R\n2 0x80 W\n3 0x100000 R\n")
    r = replay(parse_memtrace(p), model("ddr4-3200"))
    assert r["accesses"] == 4 and r["bytes_read"] == 192 and r["bytes_written"] == 64
    assert r["time_s"] > 0


def test_dse_replay_command_compares_technologies(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "seq.trace"
    p.write_text("".join(f"{i} {hex(i * 64)} R\n" for i in range(4096)))
    proc = subprocess.run([sys.executable, "-m", "dse", "replay", str(p), "-m", "ddr4-3200,hbm3", "-f", "csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(__import__("io").StringIO(proc.stdout)).set_index("memory")
    assert table.loc["hbm3", "time_s"] < table.loc["ddr4-3200", "time_s"]
    bad = subprocess.run([sys.executable, "-m", "dse", "replay", str(p), "-m", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown memory technology" in bad.stderr


@pytest.mark.parametrize("line, words", [
    ("0 0x1000 R 99999999999999999999", "size '99999999999999999999' is too large (at most 1 TiB"),
    ("0 0x1000 R 1099511627777", "size '1099511627777' is too large"),   # 1 TiB + 1
    ("1e30 0x2000 R 64", "is too large (at most 2**53"),
    ("99999999999999999999 0x2000 R 64", "time '99999999999999999999' is too large"),
    ("inf 0x2000 R 64", "time 'inf' is too large"),
])
def test_replay_refuses_sizes_and_times_past_what_it_counts_exactly(tmp_path, line, words):
    # an int64 cast of these wrapped around: bytes_read -9.2e18 and a negative energy, exit 0
    import subprocess
    import sys

    p = tmp_path / "m.trace"
    p.write_text("0 0x0 R 64\n# comment\n" + line + "\n")
    proc = subprocess.run([sys.executable, "-m", "dse", "replay", str(p), "-m", "ddr4-3200", "-f", "csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{p}:3: " in lines[0] and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_replay_takes_a_one_tib_access_and_the_largest_exact_time():
    df = parse_memtrace("0 0x0 R 1099511627776\n9007199254740992 0x40 W 64\n")
    assert df["size"].tolist() == [2**40, 64] and df["time"].tolist() == [0, 2**53]
    assert replay(df, model("ddr4-3200"))["bytes_read"] == 2**40


@pytest.mark.parametrize("text", ["", "# only a comment\n\n   \n"])
def test_a_trace_without_accesses_is_refused_not_replayed_as_zeros(tmp_path, text):
    # it printed accesses 0, time 0 s, energy 0 J and an empty row_hit_rate, exit 0
    import subprocess
    import sys

    p = tmp_path / "empty.trace"
    p.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "dse", "replay", str(p), "-m", "ddr4-3200", "-f", "csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {p}: no accesses"), proc.stderr
