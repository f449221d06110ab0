"""The search finds what physics says is best, and records every trial faithfully."""
from __future__ import annotations

import itertools
import json

import optuna
import pandas as pd
import pytest

import search_fixtures as fx
from dse.search import objective
from dse.search.study import run_study
from dse.search.tables import ALL
from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads import load_workload

optuna.logging.set_verbosity(optuna.logging.ERROR)

ROWS = "param_compute.pe.rows"


def agg(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["workload"] == ALL].reset_index(drop=True)


def test_tpe_reaches_the_roofline_knee_within_5_percent(tmp_path):
    """TOPS/W of the knee chip peaks where compute time meets weight-streaming time."""
    allowed = range(32, 513, 8)
    best_rows = max(allowed, key=fx.tops_per_w)
    optimum = fx.tops_per_w(best_rows)
    # the knee: below it compute-bound, above it bandwidth-bound
    assert fx.tops_per_w(best_rows - 64) < optimum > fx.tops_per_w(best_rows + 64)
    path = fx.write(tmp_path, fx.study(seed=5, n_trials=30))
    df = agg(run_study(path))
    assert len(df) == 30
    found = df["tops_per_w"].max()
    assert found >= 0.95 * optimum
    # and the engine agrees with the analytic roofline at the design it found
    rows = int(df.loc[df["tops_per_w"].idxmax(), ROWS])
    assert found == pytest.approx(fx.tops_per_w(rows), rel=0.01)


def test_grid_sampler_evaluates_exactly_the_grid(tmp_path):
    spec = fx.study(sampler="grid", n_trials=None, parameters={
        "compute.pe.rows": {"low": 64, "high": 256, "step": 64},          # 64, 128, 192, 256
        "memories.dram.channels": {"choices": [1, 2]},
    })
    df = agg(run_study(fx.write(tmp_path, spec)))
    assert len(df) == 4 * 2
    seen = set(zip(df[ROWS], df["param_memories.dram.channels"]))
    assert seen == set(itertools.product([64, 128, 192, 256], [1, 2]))


def test_a_grid_of_one_point_runs_that_point_once(tmp_path):
    spec = fx.study(sampler="grid", n_trials=None, parameters={"compute.pe.rows": {"choices": [64]}})
    df = agg(run_study(fx.write(tmp_path, spec)))
    assert list(df[ROWS]) == [64] and list(df["state"]) == ["COMPLETE"]


def test_three_processes_run_each_grid_point_once(tmp_path):
    """The grid's points are a queue in the storage: every process takes the next one, so a
    grid of 8 points run by three processes evaluates each exactly once (each process's own
    sampler would otherwise start from the same first point)."""
    spec = fx.study(sampler="grid", n_trials=None, parameters={
        "compute.pe.rows": {"low": 64, "high": 256, "step": 64},
        "memories.dram.channels": {"choices": [1, 2]},
    })
    df = agg(run_study(fx.write(tmp_path, spec), jobs=3, out_dir=tmp_path / "out"))
    pairs = list(zip(df[ROWS], df["param_memories.dram.channels"]))
    assert sorted(pairs) == sorted(itertools.product([64, 128, 192, 256], [1, 2]))
    assert (df["duplicate_of"] == -1).all()


def test_infeasible_designs_are_kept_marked_and_never_best(tmp_path):
    # P(R) = 20 W + 20 W R^2/65536 <= 30 W  <=>  R^2 <= 32768  <=>  R <= 181
    spec = fx.study(sampler="grid", n_trials=None, constraints=["avg_power_w <= 30 W"],
                    parameters={"compute.pe.rows": {"low": 128, "high": 256, "step": 16}})
    out = tmp_path / "out"
    df = agg(run_study(fx.write(tmp_path, spec), out_dir=out))
    assert len(df) == 9
    assert (df["state"] == "COMPLETE").all()
    assert list(df["feasible"]) == [r <= 181 for r in df[ROWS]]
    assert (df.loc[~df["feasible"], "pareto_rank"] == -1).all()
    # compute-bound below the knee: TOPS/W rises with R, so the best feasible design is R = 176
    best = df[df["pareto_rank"] == 0]
    assert list(best[ROWS]) == [176]
    assert df["tops_per_w"].max() > best["tops_per_w"].max()   # an infeasible design was "better"
    files = sorted(p.name for p in (out / "best").glob("*.yaml"))
    trials = {int(n.split("trial")[1].split(".")[0]) for n in files}
    assert trials <= set(df.loc[df["feasible"], "trial"])
    assert f"0-trial{int(best['trial'].iloc[0])}.yaml" in files


def test_model_too_big_for_memory_is_infeasible_not_failed(tmp_path):
    # the GEMM's weights are K x N int8 = 256 MiB
    spec = fx.study(sampler="grid", n_trials=None, constraints=["fits_memory"], parameters={
        "memories.dram.capacity": {"choices": ["128 MiB", "1 GiB"]}}, derived={})
    df = agg(run_study(fx.write(tmp_path, spec)))
    small = df[df["param_memories.dram.capacity"] == "128 MiB"].iloc[0]
    assert small["state"] == "COMPLETE" and not small["feasible"]
    assert small["constraint: fits_memory"] == 128 * 2**20      # bytes that do not fit
    big = df[df["param_memories.dram.capacity"] == "1 GiB"].iloc[0]
    assert big["feasible"] and big["pareto_rank"] == 0


def test_a_failing_simulation_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    real = objective.simulate

    def flaky(arch, workload):
        if arch.compute[0].rows == 128:
            raise RuntimeError("solver diverged")
        return real(arch, workload)

    monkeypatch.setattr(objective, "simulate", flaky)
    spec = fx.study(sampler="grid", n_trials=None, parameters={
        "compute.pe.rows": {"choices": [64, 128, 256]},
        # a 16 KiB staging buffer cannot hold two 256 x 256 weight tiles: a DesignError
        "sram.buf.capacity": {"choices": ["16 KiB", "512 KiB"]}})
    df = agg(run_study(fx.write(tmp_path, spec)))
    assert len(df) == 6
    failed = df[df["state"] == "FAIL"]
    reasons = dict(zip(zip(failed[ROWS], failed["param_sram.buf.capacity"]), failed["error"]))
    assert set(reasons) == {(128, "16 KiB"), (128, "512 KiB"), (256, "16 KiB")}
    assert "RuntimeError: solver diverged" in reasons[(128, "512 KiB")]
    assert "too small" in reasons[(256, "16 KiB")]
    assert (df[df["state"] == "COMPLETE"]["error"].isna()).all()
    assert (failed["pareto_rank"] == -1).all() and not failed["feasible"].any()


def test_the_same_seed_gives_the_same_table(tmp_path):
    path = fx.write(tmp_path, fx.study(seed=7, n_trials=15))
    first, second = run_study(path), run_study(path)
    pd.testing.assert_frame_equal(first, second)
    other = run_study(fx.write(tmp_path, fx.study(seed=8, n_trials=15), name="other.yaml"))
    assert list(other[ROWS]) != list(first[ROWS])


def test_running_again_resumes_instead_of_starting_over(tmp_path):
    path, out = fx.write(tmp_path, fx.study(seed=1)), tmp_path / "out"
    first = run_study(path, n_trials=6, out_dir=out)
    assert agg(first)["trial"].tolist() == list(range(6))
    more = run_study(path, n_trials=10, out_dir=out)
    assert agg(more)["trial"].tolist() == list(range(10))
    earlier = more[more["trial"] < 6].reset_index(drop=True)
    # the first six trials are kept as they were (ranks move as better designs arrive)
    pd.testing.assert_frame_equal(earlier.drop(columns="pareto_rank"), first.drop(columns="pareto_rank"))
    again = run_study(path, n_trials=10, out_dir=out)
    assert len(agg(again)) == 10
    on_disk = pd.read_parquet(out / "trials.parquet")
    assert len(agg(on_disk)) == 10


def test_a_sweep_the_storage_refuses_lets_its_lock_go(tmp_path):
    """A study file whose objectives differ from the stored study's is refused (one line); the
    refused sweep, and a finished study run again with workers, leave no child process and
    the storage's lock free, so the next sweep on it runs (it would wait for ever)."""
    import fcntl
    import multiprocessing
    import os

    from dse.errors import SpecError

    path, out = fx.write(tmp_path, fx.study(seed=1)), tmp_path / "out"
    run_study(path, n_trials=4, out_dir=out)
    again = run_study(path, n_trials=4, jobs=2, out_dir=out)
    assert agg(again)["trial"].tolist() == list(range(4))
    assert multiprocessing.active_children() == []
    other = fx.write(tmp_path, fx.study(seed=1, objectives=["minimize latency_s"]), name="other.yaml")
    with pytest.raises(SpecError, match="other objectives"):
        run_study(other, n_trials=8, jobs=3, storage=f"sqlite:///{out / 'study.db'}")
    assert multiprocessing.active_children() == []
    fd = os.open(out / "study.db.lock", os.O_RDWR)
    try:  # the refused sweep let its lock go (else the next sweep on this storage would wait forever)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert len(agg(run_study(path, n_trials=4, out_dir=out))) == 4


def test_ctrl_c_keeps_every_completed_trial(tmp_path):
    path, out = fx.write(tmp_path, fx.study(n_trials=20)), tmp_path / "out"

    def interrupt(p):
        if p.done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(path, out_dir=out, progress=interrupt)
    kept = agg(pd.read_parquet(out / "trials.parquet"))
    assert (kept["state"] == "COMPLETE").sum() == 4
    resumed = agg(run_study(path, out_dir=out))
    assert (resumed["state"] == "COMPLETE").sum() == 20


def test_output_directory_layout_and_ready_to_run_designs(tmp_path):
    spec = fx.study(n_trials=6, constraints=["area_mm2 <= 100"], best_designs=2)
    out = tmp_path / "out"
    df = run_study(fx.write(tmp_path, spec), out_dir=out)
    assert {p.name for p in out.iterdir()} >= {"study.db", "trials.parquet", "trials.csv", "study.json", "best"}
    for col in ["trial", "workload", "state", "feasible", "pareto_rank", "error", ROWS,
                "param_compute.pe.cols", "tops_per_w", "avg_power_w", "area_mm2", "constraint: area_mm2 <= 100"]:
        assert col in df.columns
    assert set(df["workload"]) == {fx.GEMM, ALL} and len(df) == 2 * 6
    assert len(pd.read_csv(out / "trials.csv")) == len(df)
    info = json.loads((out / "study.json").read_text())
    assert info["architecture"] == "knee"
    assert info["objectives"] == [{"metric": "tops_per_w", "direction": "maximize"}]
    assert info["parameters"] == ["compute.pe.rows"] and info["constraints"] == ["area_mm2 <= 100"]
    assert info["workloads"] == [{"name": fx.GEMM, "spec": fx.GEMM, "weight": 1.0}]
    assert info["storage"].startswith("sqlite:///") and info["sampler"] == "tpe"
    files = sorted((out / "best").glob("*.yaml"))
    assert len(files) == 2
    design = load_architecture(files[0])
    trial = int(files[0].stem.split("trial")[1])
    row = agg(df).set_index("trial").loc[trial]
    assert design.compute[0].rows == design.compute[0].cols == row[ROWS]
    # the file runs as it stands and gives the table's numbers
    again = simulate(design, load_workload(fx.GEMM)).summary_row
    assert again["tops_per_w"] == pytest.approx(row["tops_per_w"], rel=1e-9)


def test_weighted_workloads_aggregate_as_one_mixed_job(tmp_path):
    small, large = "gemm:m=1024,n=4096,k=4096", "gemm:m=4096,n=8192,k=8192"
    spec = fx.study(n_trials=2, workloads=[{"spec": small, "weight": 3}, {"spec": large, "weight": 1}])
    df = run_study(fx.write(tmp_path, spec))
    t0 = df[df["trial"] == 0].set_index("workload")
    design = load_architecture(tmp_path / "chip.yaml", overrides={
        "compute.pe.rows": int(t0.loc[ALL, ROWS]), "compute.pe.cols": int(t0.loc[ALL, ROWS]),
        "compute.pe.leakage": t0.loc[ALL, "param_compute.pe.leakage"]})
    a = simulate(design, load_workload(small)).summary_row
    b = simulate(design, load_workload(large)).summary_row
    ops = 0.75 * 2 * 1024 * 4096 * 4096 + 0.25 * 2 * 4096 * 8192 * 8192
    energy = 0.75 * a["energy_j"] + 0.25 * b["energy_j"]
    time_s = 0.75 * a["latency_s"] + 0.25 * b["latency_s"]
    mix = t0.loc[ALL]
    assert mix["tops_per_w"] == pytest.approx(ops / energy / 1e12, rel=1e-9)
    assert mix["avg_power_w"] == pytest.approx(energy / time_s, rel=1e-9)
    assert mix["latency_s"] == pytest.approx(time_s, rel=1e-9)
    assert t0.loc[small, "energy_j"] == pytest.approx(a["energy_j"], rel=1e-9)


def test_multiobjective_front_is_not_dominated(tmp_path):
    spec = fx.study(sampler="nsga2", n_trials=24,
                    objectives=["maximize throughput_ops_per_s", "minimize avg_power_w"],
                    parameters={"compute.pe.rows": {"low": 32, "high": 512, "step": 8},
                                "compute.pe.clock": {"low": 2e8, "high": 1e9}})
    df = agg(run_study(fx.write(tmp_path, spec)))
    pts = list(zip(df["throughput_ops_per_s"], df["avg_power_w"], df["pareto_rank"]))

    def dominates(p, q):
        return p[0] >= q[0] and p[1] <= q[1] and (p[0] > q[0] or p[1] < q[1])

    front = [p for p in pts if p[2] == 0]
    assert front
    assert not any(dominates(q, p) for p in front for q in pts)
    for p in pts:
        if p[2] > 0:
            assert any(dominates(q, p) for q in pts if q[2] == p[2] - 1)
