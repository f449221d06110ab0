"""A study whose workload is a serving run: scheduler knobs and KV format as parameters, a serving
metric as objective, a TPOT SLO as constraint, the latency-throughput curve in its report."""
import pytest

from dse.errors import SpecError
from dse.search.resolve import resolve_study
from dse.search.study import run_study

STUDY = """
name: tiny-serving
architecture: h100-class
workloads:
  - serve:model=llama-3-8b,rate=40,requests=120,prompt_tokens=256,output_tokens=64-192
parameters:
  serving.batch_cap: {choices: [4, 16, 64]}
  serving.kv_precision: {choices: [bf16, fp8_e4m3]}
objectives: [maximize tokens_per_j]
constraints: [tpot_p99_s <= 10 ms]
sampler: grid
n_trials: 6
"""


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    path = folder / "tiny.yaml"
    path.write_text(STUDY)
    table = run_study(path, out_dir=folder / "out")
    rows = table[table["workload"] != "__all__"] if "__all__" in set(table["workload"]) else table
    return folder / "out", rows.drop_duplicates("trial")


def test_bundled_serving_study_resolves():
    st = resolve_study("llama3-70b-serving")
    assert {p.path for p in st.space.parameters} == {"serving.batch_cap", "serving.kv_precision"}
    assert st.objectives[0].metric == "tokens_per_j"


def test_best_design_is_the_most_efficient_within_the_slo(study_run):
    _, rows = study_run
    assert len(rows) == 6 and rows["tokens_per_j"].notna().all()
    ok = rows[rows["tpot_p99_s"] <= 0.010]
    best = ok.loc[ok["tokens_per_j"].idxmax()]
    # nothing feasible is more efficient; anything more efficient breaks the SLO
    assert (rows[rows["tokens_per_j"] > best["tokens_per_j"]]["tpot_p99_s"] > 0.010).all()
    # an fp8 KV cache moves half the KV bytes per step: never fewer tokens per joule than bf16
    # at the same batch cap
    for cap, d in rows.groupby("param_serving.batch_cap"):
        by = d.set_index("param_serving.kv_precision")["tokens_per_j"]
        assert by["fp8_e4m3"] >= by["bf16"] * 0.999, cap


def test_report_draws_latency_throughput(study_run):
    from dse.report.build import build_report

    out, _ = study_run
    html = build_report(out)
    md = html.with_suffix(".md").read_text()
    assert "Serving: latency against throughput" in md
    assert (out / "report_files" / "02-latency-throughput.png").is_file() or any(
        p.name.endswith("latency-throughput.png") for p in (out / "report_files").iterdir())
    # the best designs written are plain architecture files: no serving knob leaks into them
    for f in (out / "best").glob("*.yaml"):
        body = "\n".join(line for line in f.read_text().splitlines() if not line.startswith("#"))
        assert "batch_cap" not in body


def test_unknown_serving_parameter(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(STUDY.replace("serving.batch_cap:", "serving.batchcap:"))
    with pytest.raises(SpecError, match="'serving.batchcap' names no serving parameter"):
        resolve_study(path)


def test_bad_serving_value_rejected_before_the_run(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(STUDY.replace("[bf16, fp8_e4m3]", "[bf16, fp9]"))
    with pytest.raises(SpecError, match="fp9"):
        resolve_study(path)


def test_serving_metrics_are_known_objectives(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.replace("maximize tokens_per_j", "minimize ttft_p99_s"))
    assert resolve_study(path).objectives[0].direction == "minimize"
