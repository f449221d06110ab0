"""Bad serving input, from the command line, a trace file, a validation case or the library:
one line naming the file (its line where there is one), the field and what is wrong, exit 2.
The expected line numbers are counted by hand in the texts below."""
from __future__ import annotations


import pandas as pd
import pytest

from dse.errors import DseError, SpecError
from dse.serving import Request, ServingSpec, simulate_serving
from dse.serving.requests import MAX_REQUESTS, load_trace
from dse.spec.loader import load_architecture
from test_cli_errors import assert_one_line_error as one_line_exit_2, dse  # (the CLI's one-line errors)


# ---- dse serve's options --------------------------------------------------------------

def test_negative_seed_is_refused_before_numpy_sees_it():
    one_line_exit_2(dse("serve", "h100-class", "--seed", "-1"), "seed", "integer >= 0", "-1")


def test_request_count_has_an_upper_bound_with_its_reason():
    # 99,999,999,999 requests asked numpy for 745 GiB (MemoryError traceback)
    msg = one_line_exit_2(dse("serve", "h100-class", "--requests", "99999999999"), "requests",
                          f"{MAX_REQUESTS:,}")
    assert "99,999,999,999" in msg
    with pytest.raises(SpecError, match="more than"):
        ServingSpec(requests=MAX_REQUESTS + 1)
    ServingSpec(requests=MAX_REQUESTS)  # the bound itself is allowed


# ---- trace files: the bad row, its own value ------------------------------------------

HEAD = "arrival_s,prompt_tokens,output_tokens\n"


@pytest.mark.parametrize("name, text, where, words", [
    # a bad cell used to turn the column into text: the first row was blamed with its valid 512
    ("t.csv", HEAD + "0,512,128\n0.1,abc,128\n", ":3", "prompt_tokens must be a positive integer, got 'abc'"),
    ("t.csv", HEAD + "0,512,128\n0.1,512,128\n0.2,,128\n", ":4", "prompt_tokens must be a positive integer, got ''"),
    ("t.csv", HEAD + "0,512,128\n0.1,300.0,128\n", ":3", "got '300.0'"),
    ("t.csv", HEAD + "0,512,128\n0.1,512,abc\n", ":3", "output_tokens must be a positive integer, got 'abc'"),
    ("t.csv", HEAD + "\n0,512,128\n-1,512,128\n", ":4", "arrival_s must be a time in seconds >= 0, got '-1'"),
    ("t.csv", HEAD + "1e400,5,5\n", ":2", "got '1e400'"),
    ("t.csv", "arrival_s,prompt_tokens\n0,5\n", ":1", "missing column(s) output_tokens"),
    ("t.csv", HEAD + "0,5\n", ":2", "expected 3 cells"),
    # JSON lines are numbered as lines (no header): the second line is :2
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 5}\n'
                '{"arrival_s": 0, "prompt_tokens": -5, "output_tokens": 5}\n', ":2", "got -5"),
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 5}\n\n[1,2]\n', ":3",
     "expected a JSON object"),
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": true, "output_tokens": 5}\n', ":1",
     "prompt_tokens must be a positive integer, got True"),
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 5, "arrival_s": 3}\n', ":1",
     "'arrival_s' given twice"),
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": 5}\n', ":1", "missing key(s) output_tokens"),
    ("t.jsonl", '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 5\n', ":1", "not valid JSON"),
    ("t.json", '[{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 5}, {"arrival_s": 1}]', ": request 1",
     "missing key(s) prompt_tokens, output_tokens"),
])
def test_a_bad_trace_row_is_named_with_its_own_value(tmp_path, name, text, where, words):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        load_trace(p)
    assert str(info.value).startswith(f"{p}{where}: ") and words in str(info.value), str(info.value)
    one_line_exit_2(dse("serve", "h100-class", "-t", str(p), "-f", "csv"), f"{p}{where}: ", words)


def test_a_json_array_trace_is_read_and_blank_lines_do_not_count(tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text('[{"arrival_s": 0.5, "prompt_tokens": 7, "output_tokens": 3},'
                   ' {"arrival_s": 0, "prompt_tokens": 9, "output_tokens": 2}]')
    assert [(r.arrival_s, r.prompt_tokens, r.output_tokens) for r in load_trace(arr)] == [(0.0, 9, 2), (0.5, 7, 3)]
    csv = tmp_path / "b.csv"
    csv.write_text("note,output_tokens,arrival_s,prompt_tokens\n\nx,4,0.25,11\n")   # columns in any order
    (r,) = load_trace(csv)
    assert (r.arrival_s, r.prompt_tokens, r.output_tokens, r.source) == (0.25, 11, 4, f"{csv}:3")


def test_a_binary_file_is_not_a_trace(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20)
    one_line_exit_2(dse("serve", "h100-class", "-t", str(p)), str(p), "not a text file")


def test_a_trace_request_past_the_context_names_its_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEAD + "0,512,128\n0,9000,1\n")   # llama-3-8b: 8192 tokens of context
    one_line_exit_2(dse("serve", "h100-class", "-t", str(p)), f"{p}:3:", "8192")


# ---- validation cases and the library entry point ---------------------------------------

CASE = """\
cases:
  - name: x
    kind: serving
    system: one H100
    architecture: h100-class
    cite: nobody, 2026
    source: a test
    metric: tpot_p50_s
    measured: 7 ms
    serve: serve:model=llama-3-8b
    requests: {requests}
"""


@pytest.mark.parametrize("requests, field, words", [
    ("[[0, -13, 120]]", "requests[0][1]", "greater than 0"),
    ("[[0, 13, -120]]", "requests[0][2]", "greater than 0"),
    ("[[-5, 13, 120]]", "requests[0][0]", "greater than or equal to 0"),
    ("[[0, 13, 120], [0, true, 5]]", "requests[1][1]", "integer"),
    ("[[.nan, 13, 120]]", "requests[0][0]", "finite"),
])
def test_validate_refuses_a_serving_case_with_impossible_requests(tmp_path, requests, field, words):
    # these ran with exit 0: a TPOT of 0.0 and an error of -100%
    p = tmp_path / "v.yaml"
    p.write_text(CASE.format(requests=requests))
    one_line_exit_2(dse("validate", str(p)), f"{p}:11:", field, words)


@pytest.fixture(scope="module")
def h100():
    return load_architecture("h100-class")


@pytest.mark.parametrize("requests, words", [
    ([Request(0, 0.0, 13, 120), Request(1, 0.0, -13, 120)], "requests[1]: prompt_tokens must be a positive integer"),
    ([Request(0, 0.0, 13, 0)], "requests[0]: output_tokens must be a positive integer, got 0"),
    ([Request(0, -5.0, 13, 120)], "requests[0]: arrival_s must be a time in seconds >= 0, got -5.0"),
    ([Request(0, float("inf"), 13, 120)], "got inf"),
    ([Request(0, 0.0, True, 120)], "got True"),
    ([(0.0, 13, 120)], "requests[0]: expected a Request"),
    ([], "non-empty list"),
])
def test_simulate_serving_checks_the_requests_it_is_given(h100, requests, words):
    with pytest.raises(DseError) as info:
        simulate_serving(h100, ServingSpec(), requests=requests)
    assert words in str(info.value), str(info.value)


# ---- serving workloads in studies: checked when the study is read ------------------------

STUDY = """\
name: sv
architecture: h100-class
workloads:
  - {workload}
parameters:
  serving.batch_cap: {{choices: [4, 8]}}
{extra}objectives:
  - maximize tokens_per_j
sampler: grid
"""


@pytest.mark.parametrize("workload, extra, line, words", [
    # each of these failed every trial: "every one of the 2 trials failed; the first: ... ValueError"
    ("serve:model=llama-3-8b,rate=10,requests=20,seed=-1", "", 4, "workloads[0].seed: "),
    ("serve:model=llama-3-8b,requests=99999999999", "", 4, "workloads[0].requests: "),
    ("serve:model=llama-3-8b,prompt_tokens=9000", "", 4, "8192 tokens"),
    ("serve:model=llama-3-8b,prompt_tokens=4096,output_tokens=100-4097", "", 4, "4096 + 4097"),
    ("serve:model=llama-3-8b,trace=nothere.csv", "", 4, "workloads[0].trace: "),
    ("serve:model=nothere", "", 4, "workloads[0].model: "),
    ("serve:model=llama-3-8b,requests=20", "  serving.trace: {choices: [nothere.csv, t.csv]}\n", 7,
     "value 'nothere.csv' is rejected by the serving run: trace: file 'nothere.csv' not found"),
    ("serve:model=llama-3-8b,requests=20", "  serving.prompt_tokens: {choices: [512, 9000]}\n", 7,
     "value 9000 is rejected by the serving run: prompt_tokens: "),
])
def test_a_study_checks_its_serving_workloads_when_it_is_read(tmp_path, workload, extra, line, words):
    (tmp_path / "t.csv").write_text(HEAD + "0,5,5\n")
    p = tmp_path / "sv.yaml"
    p.write_text(STUDY.format(workload=workload, extra=extra))
    one_line_exit_2(dse("sweep", str(p), "--out", str(tmp_path / "out")), f"{p}:{line}: ", words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("trials.*"))


def test_a_bad_row_of_a_studys_trace_names_the_trace_line(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "bad.csv").write_text(HEAD + "0,5,5\n0.5,-256,5\n")
    (sub / "sv.yaml").write_text(STUDY.format(workload="serve:model=llama-3-8b,trace=bad.csv", extra=""))
    one_line_exit_2(dse("sweep", "sub/sv.yaml", "--out", "out", cwd=tmp_path), "sub/bad.csv:3: ", "got '-256'")


def test_study_traces_are_read_from_the_study_files_folder(tmp_path):
    # sub/sv.yaml naming trace=tr.csv (sub/tr.csv) failed every trial when run from the parent
    # folder; so did a plain workload trace file 'wl.yaml' beside the study
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "tr.csv").write_text(HEAD + "0,64,3\n0.01,32,2\n")
    (sub / "sv.yaml").write_text(STUDY.format(workload="serve:model=llama-3-8b,trace=tr.csv", extra=""))
    proc = dse("sweep", "sub/sv.yaml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 4 and (trials["state"] == "COMPLETE").all()   # 2 trials, each with its __all__ row
    assert (trials["requests"] == 2).all()        # the trace's two requests were served
    assert (trials["output_tokens"] == 5).all()   # 3 + 2 tokens
    (sub / "wl.yaml").write_text("name: two\nsamples: 1\nprecision: bf16\n"
                                 "ops:\n  - {name: fc, kind: matmul, m: 8, k: 64, n: 64}\n")
    (sub / "sw.yaml").write_text("name: sw\narchitecture: h100-class\nworkloads:\n  - wl.yaml\n"
                                 "parameters:\n  compute.tensor_cores.count: {choices: [100, 132]}\n"
                                 "objectives:\n  - maximize tops_per_w\nsampler: grid\n")
    proc = dse("sweep", "sub/sw.yaml", "--out", "out2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trials = pd.read_csv(tmp_path / "out2" / "trials.csv")
    assert (trials["state"] == "COMPLETE").all() and (trials["macs"] == 8 * 64 * 64).all()


# ---- TPOT where no request has a second token ---------------------------------------------

def test_tpot_is_empty_not_zero_when_no_request_has_a_second_token(tmp_path):
    # it read 0 s (p50/p90/p99/mean), so a 'tpot_p99_s <= X' constraint was always met
    import json

    proc = dse("serve", "h100-class", "-n", "2", "--output-tokens", "1", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert all(row[f"tpot_{s}_s"] is None for s in ("p50", "p90", "p99", "mean"))
    assert row["ttft_p50_s"] > 0 and row["e2e_p50_s"] == row["ttft_p50_s"]   # one token: done at the first
    # a one-token request has no gap between tokens: it cannot miss the TPOT objective
    assert row["slo_attainment"] == 1.0


def test_tpot_percentiles_count_only_requests_with_a_second_token(h100, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEAD + "0,64,1\n0,64,5\n5,64,1\n")
    res = simulate_serving(h100, ServingSpec(trace=str(p)))
    df = res.requests.set_index("request")
    assert df.loc[0, "tpot_s"] is pd.NA and df.loc[2, "tpot_s"] is pd.NA
    # the one request with 5 tokens: 4 gaps between its first and last token
    expected = (df.loc[1, "finish_s"] - df.loc[1, "first_token_s"]) / 4
    assert res["tpot_p50_s"] == pytest.approx(expected) and res["tpot_mean_s"] == pytest.approx(expected)


@pytest.mark.parametrize("goal, line", [("objectives:\n  - minimize tpot_p99_s\n", 8),
                                        ("objectives:\n  - maximize tokens_per_j\nconstraints:\n"
                                         "  - tpot_p99_s <= 1 ms\n", 10)])
def test_a_study_goal_on_tpot_needs_a_request_with_a_second_token(tmp_path, goal, line):
    p = tmp_path / "tp.yaml"
    p.write_text("name: tp\narchitecture: h100-class\nworkloads:\n  - serve:model=llama-3-8b,requests=4,"
                 "output_tokens=1\nparameters:\n  serving.batch_cap: {choices: [4, 8]}\n" + goal + "sampler: grid\n")
    one_line_exit_2(dse("sweep", str(p), "--out", str(tmp_path / "out")), f"{p}:{line}: ", "'tpot_p99_s'",
                    "second token")


def test_a_validation_case_on_tpot_with_only_one_token_outputs_is_one_line(tmp_path):
    # float(None) was a TypeError traceback once the summary left the TPOT empty
    p = tmp_path / "v.yaml"
    p.write_text(CASE.format(requests="[[0, 13, 1], [0, 20, 1]]"))
    one_line_exit_2(dse("validate", str(p)), "case 'x'", "tpot_p50_s", "no request has a second token")
