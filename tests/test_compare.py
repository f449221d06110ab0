"""`dse compare`: one design, its memory swapped per technology, every workload on each.

Expectations come from the technology tables and the workload, not from the code
under test: a memory-bound GPT decode step scales with memory bandwidth, and the
memory's share of energy is at least reading the weights once at the tabulated pJ/bit.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from dse.errors import SpecError
from dse.search.compare import compare
from dse.spec.loader import load_architecture
from dse.tech.library import tier_defaults
from dse.units import to_si
from dse.workloads import load_workload

TECHS = {"ddr5": "ddr5-4800", "lpddr5": "lpddr5-6400", "hbm3": "hbm3", "optane": "optane-pmem"}


@pytest.fixture(scope="module")
def decode(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    return compare("h100-class", list(TECHS), ["gpt-decode"], out), out


def _bandwidth(tech: str) -> float:
    """Total bandwidth of the H100-class HBM tier (5 units) on a technology: the design's own
    3.35 TB/s for HBM3, which it keeps, else 5 x the library's per-unit figure."""
    h100 = load_architecture("h100-class")
    if tech == "hbm3":
        return h100.memories[0].bandwidth
    return 5 * tier_defaults(tech)["bandwidth_per_channel"]


def test_hbm3_beats_ddr5_on_gpt_decode_and_ranking_follows_bandwidth(decode):
    df, _ = decode
    tput = df.set_index("technology")["throughput_samples_per_s"]
    assert tput["hbm3"] > tput["ddr5"]
    by_bandwidth = sorted(TECHS, key=lambda t: _bandwidth(TECHS[t]), reverse=True)
    assert list(tput.sort_values(ascending=False).index) == by_bandwidth
    # decode reads every weight per token: throughput is bounded by bandwidth / weight bytes ...
    weights = load_workload("gpt:phase=decode").weight_bytes()
    for short, tech in TECHS.items():
        assert tput[short] <= _bandwidth(tech) / weights * 1.0001
    # ... and, memory-bound on both, HBM3 over DDR5 follows the bandwidth ratio (within 30%)
    ratio = (tput["hbm3"] / tput["ddr5"]) / (_bandwidth("hbm3") / _bandwidth("ddr5-4800"))
    assert 0.7 < ratio < 1.3


def test_memory_energy_share_per_technology(decode):
    df, _ = decode
    weights = load_workload("gpt:phase=decode").weight_bytes()
    rows = df.set_index("technology")
    assert set(rows.index) == set(TECHS)
    for short, tech in TECHS.items():
        r = rows.loc[short]
        assert 0.0 <= r["memory_energy_share"] < 1.0
        if tech == "hbm3":  # kept as designed: 3.9 pJ/bit in the H100-class file
            read_j_per_bit = load_architecture("h100-class").memories[0].read_energy
        else:
            read_j_per_bit = tier_defaults(tech).get("read_energy")
        assert bool(r["memory_energy_sourced"]) == (read_j_per_bit is not None)
        if read_j_per_bit:
            floor = weights * 8 * read_j_per_bit / r["energy_j"]
            assert r["memory_energy_share"] >= floor * 0.999
    # DDR5-4800 reads cost 11.1 pJ/bit in the library: at least that per weight bit
    assert rows.loc["ddr5", "memory_energy_share"] >= weights * 8 * to_si("11.1 pJ/bit", "energy_per_bit") \
        / rows.loc["ddr5", "energy_j"]


def test_compare_writes_tables_and_a_report_rebuilt_without_simulating(decode, monkeypatch, tmp_path):
    import dse.sim.engine as engine

    from dse.report.build import build_report

    _, out = decode
    for name in ("compare.parquet", "compare.csv", "compare.json", "report.html", "report.md"):
        assert (out / name).is_file()
    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("a report must not simulate"))
    page = build_report(out, tmp_path / "again.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2          # grouped bars and the TOPS/W heatmap
    assert "gpt-decode" in page and "lpddr5" in page


def test_unknown_or_non_tier_technologies_are_one_clear_error():
    with pytest.raises(SpecError) as exc:
        compare("h100-class", ["ddr5", "ddr9"], ["gpt-decode"], None)
    msg = str(exc.value)
    assert "'ddr9'" in msg and "ddr5-4800" in msg and "hbm3" in msg and "\n" not in msg
    with pytest.raises(SpecError, match="cell-level"):
        compare("h100-class", ["reram"], ["gpt-decode"], None)


def test_cli_prints_the_table_and_fails_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from dse.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["compare", "--arch", "tpu-v1-like", "--memory", "ddr4,hbm3", "--workload", "mlp",
                             "--out", str(tmp_path / "c")], env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    assert "ddr4" in ok.stdout and "hbm3" in ok.stdout and "TOPS/W" in ok.stdout
    assert (tmp_path / "c" / "report.html").is_file()
    rep = runner.invoke(app, ["report", str(tmp_path / "c"), "--out", str(tmp_path / "r.html")])
    assert rep.exit_code == 0, rep.output
    assert (tmp_path / "r.html").is_file() and (tmp_path / "r.md").is_file()
    # through the real entry point: one line on stderr, exit status 2
    bad = subprocess.run([sys.executable, "-m", "dse", "compare", "--arch", "tpu-v1-like", "--memory",
                          "ddr5,ddr9", "--workload", "mlp", "--out", str(tmp_path / "d")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "ddr9" in bad.stderr and "ddr5-4800" in bad.stderr


def test_reram_crossbars_running_every_layer_keep_weights_so_decode_reads_only_kv_cache_and_embeddings():
    from dse import results as R
    from dse.sim.engine import simulate
    from dse.spec.loader import load_architecture
    from dse.search.compare import imc_variant
    from dse.spec.variants import build_variant, canonical_doc
    from dse.workloads import load_workload

    base = load_architecture("h100-class")
    wl = load_workload("gpt:phase=decode")
    doc = imc_variant(canonical_doc(base), wl)
    unit = next(u for u in doc["compute"] if u["kind"] == "imc")
    unit["use"] = "always"                                   # every weight layer on the crossbars
    every = simulate(build_variant(doc).arch, wl).summary_row
    plain = simulate(base, wl).summary_row
    # what still comes from HBM: the KV cache read per token and the token's embedding row
    kv_read = sum(t["bytes"] for op in wl.ops for k, t in op.tensor_bytes().items()
                  if k != "out" and t["role"] in ("kv_cache", "embeddings"))
    assert plain[R.bytes_read_col("hbm3")] >= wl.weight_bytes()   # every weight streamed once per token
    assert every[R.bytes_read_col("hbm3")] == pytest.approx(kv_read, rel=1e-9)
    assert every[R.energy_col("hbm3")] < plain[R.energy_col("hbm3")]


def test_imc_row_is_never_slower_than_the_design_without_it_and_names_what_moved(tmp_path):
    """H100-class on ResNet-50: one ISAAC-style tile loses to 132 SMs on every layer, so the IMC
    row keeps them all digital and matches the design's own throughput. On the TPU v1-like chip
    streaming an MLP's weights from DDR3 is slower than the crossbars, so its layers move, and the
    report says which and why."""
    df = compare("h100-class", ["hbm3", "reram-imc"], ["resnet50"], tmp_path / "h100")
    row = df.set_index("technology")
    assert row.loc["reram-imc", "throughput_samples_per_s"] >= row.loc["hbm3", "throughput_samples_per_s"] * (1 - 1e-9)
    assert row.loc["reram-imc", "imc_ops"] == 0 and row.loc["reram-imc", "weight_ops"] == 54  # 53 conv + fc
    html = (tmp_path / "h100" / "report.html").read_text()
    assert "none of the 54 weight layers moved to the crossbars" in html

    tpu = compare("tpu-v1-like", ["ddr3-2133", "reram-imc"], ["mlp"], tmp_path / "tpu").set_index("technology")
    assert tpu.loc["ddr3-2133", "as_designed"]
    assert tpu.loc["reram-imc", "throughput_samples_per_s"] >= tpu.loc["ddr3-2133", "throughput_samples_per_s"]
    assert tpu.loc["reram-imc", "imc_ops"] == tpu.loc["reram-imc", "weight_ops"] == 3   # the MLP's 3 layers
    import html as html_lib

    page = html_lib.unescape((tmp_path / "tpu" / "report.html").read_text())
    assert "3 of 3 weight layers moved to the crossbars (fc0, fc1, fc2)" in " ".join(page.split())
