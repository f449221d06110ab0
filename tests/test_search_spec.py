"""Study files: bad input is one clear line (file:line) and exit status 2; expressions are
arithmetic and nothing else; the bundled studies resolve."""
from __future__ import annotations

import math
import sys

import optuna
import pytest

import search_fixtures as fx
from dse.errors import SpecError
from dse.search.expressions import parse_expression
from dse.search.resolve import resolve_study
from dse.search.study import run_study
from dse.search.tables import ALL, pareto_ranks
from dse.spec.loader import bundled_names

optuna.logging.set_verbosity(optuna.logging.ERROR)


def sweep_exit(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    from dse.cli import main

    monkeypatch.setattr(sys, "argv", ["dse", "sweep", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def error_of(tmp_path, **changes) -> str:
    with pytest.raises(SpecError) as exc:
        resolve_study(fx.write(tmp_path, fx.study(**changes)))
    return str(exc.value)


def test_unknown_parameter_path_suggests_the_closest_fields(tmp_path, monkeypatch, capsys):
    path = fx.write(tmp_path, fx.study(parameters={"compute.pe.row": {"low": 32, "high": 64}}))
    code, err = sweep_exit(monkeypatch, capsys, [str(path), "--out", str(tmp_path / "out")])
    assert code == 2
    assert err.count("\n") == 1
    assert f"{path}:" in err and "'compute.pe.row' names no field" in err
    assert "did you mean compute.pe.rows" in err
    assert not (tmp_path / "out").exists()


def test_a_field_left_at_its_default_can_be_searched(tmp_path):
    st = resolve_study(fx.write(tmp_path, fx.study(parameters={"compute.pe.count": {"low": 1, "high": 4}},
                                                   derived={})))
    assert [p.path for p in st.space.parameters] == ["compute.pe.count"]


def test_empty_range_is_refused(tmp_path, monkeypatch, capsys):
    path = fx.write(tmp_path, fx.study(parameters={"compute.pe.rows": {"low": 512, "high": 32}}))
    code, err = sweep_exit(monkeypatch, capsys, [str(path)])
    assert code == 2 and err.count("\n") == 1
    assert "empty range" in err and f"{path}:" in err


@pytest.mark.parametrize("param, words", [
    ({"choices": []}, "empty list of choices"),
    ({"low": 0, "high": 8, "log": True}, "log-scale range needs low > 0"),
    ({"low": 1, "high": 8, "step": 0}, "step must be positive"),
    ({"low": 0, "high": 64}, "rejected by the architecture"),       # rows must be > 0
])
def test_other_impossible_parameters(tmp_path, param, words):
    assert words in error_of(tmp_path, parameters={"compute.pe.rows": param})


@pytest.mark.parametrize("changes, words", [
    ({"seed": 2**64}, "seed: Input should be less than 2147483648"),          # numpy's seed range
    ({"objectives": []}, "objectives: List should have at least 1 item"),
    ({"parameters": {"compute.pe.rows": {"low": 32, "high": 512, "step": float("nan")}}},
     "parameters.compute.pe.rows.step: nan is not a finite number"),
    ({"parameters": {"compute.pe.rows": {"low": 32, "high": 512, "step": 1e-300}}},
     "more than 1,000,000,000 values"),
])
def test_seeds_objectives_and_steps_out_of_range_name_their_field(tmp_path, changes, words):
    assert words in error_of(tmp_path, **changes)


def test_a_sweep_in_which_every_trial_failed_exits_2_with_the_first_reason(tmp_path, monkeypatch, capsys):
    # (-8) ** 0.5 is complex: every trial's derived area fails, none is a design
    path = fx.write(tmp_path, fx.study(derived={"compute.pe.cols": "rows", "compute.pe.area": "(-8)**0.5"},
                                       n_trials=2))
    code, err = sweep_exit(monkeypatch, capsys, [str(path), "--out", str(tmp_path / "out")])
    assert code == 2 and err.count("\n") == 1
    assert "every one of the 2 trials failed" in err and "complex number" in err
    assert "compute.pe.area" in err


def test_a_workload_that_cannot_load_names_its_study_line_or_its_trace_line(tmp_path):
    path = fx.write(tmp_path, fx.study(workloads=["[/]"]))
    # lines of fx.study's file: name, architecture, `workloads:`, then the entry on line 4
    assert error_of(tmp_path, workloads=["[/]"]).startswith(f"{path}:4: workloads[0]: workload '[/]'")
    assert f"{path}:4: workloads[0].m: " in error_of(tmp_path, workloads=["gemm:m=0"])
    # a name longer than the OS allows (NAME_MAX is 255) is no file, not an OSError
    long = "1" * 3000
    assert "unknown workload '" in error_of(tmp_path, workloads=[long])
    assert f"{path}:4: workloads[0]: " in error_of(tmp_path, workloads=[f"a/{long}.yaml"])
    assert "architecture: no file or bundled architecture named" in error_of(tmp_path, architecture=long)
    trace = tmp_path / "bad.yaml"
    trace.write_text("name: t\nops:\n  - {name: a, kind: matmul, m: -8, n: 8, k: 8}\n")
    assert error_of(tmp_path, workloads=[str(trace)]).startswith(f"{trace}:3: ops[0].m: ")


def test_objective_naming_no_metric(tmp_path, monkeypatch, capsys):
    path = fx.write(tmp_path, fx.study(objectives=["maximize tops_per_watt"]))
    code, err = sweep_exit(monkeypatch, capsys, [str(path)])
    assert code == 2 and err.count("\n") == 1
    assert "'tops_per_watt' names no metric" in err and "tops_per_w" in err


def test_constraint_naming_no_metric_or_unreadable(tmp_path):
    assert "'power_w' names no metric" in error_of(tmp_path, constraints=["power_w <= 75"])
    assert "should read" in error_of(tmp_path, constraints=["avg_power_w is small"])
    assert "is a frequency, expected a power" in error_of(tmp_path, constraints=["avg_power_w <= 75 GHz"])
    assert "cannot read" in error_of(tmp_path, constraints=["latency_s <= soon"])


@pytest.mark.parametrize("expr, construct", [
    ("__import__('os').system('true')", "calling"),
    ("rows if rows > 1 else 2", "conditional"),
    ("rows > 2", "comparison"),
    ("[rows][0]", "indexing"),
    ("'abc'", "constant 'abc'"),
    ("(lambda: 1)()", "calling"),
    ("rows.bit_length()", "calling"),
    ("rows and 1", "boolean"),
])
def test_expressions_allow_arithmetic_only(tmp_path, monkeypatch, capsys, expr, construct):
    path = fx.write(tmp_path, fx.study(derived={"compute.pe.cols": expr}))
    code, err = sweep_exit(monkeypatch, capsys, [str(path)])
    assert code == 2 and err.count("\n") == 1
    assert "not allowed in an expression" in err and construct in err


def test_expression_names_must_be_parameters(tmp_path):
    assert "'rowz' is not a parameter (did you mean rows" in error_of(
        tmp_path, derived={"compute.pe.cols": "rowz"})


def test_arithmetic_evaluates_like_the_maths():
    names = {"rows", "cols", "compute.mxu.rows"}
    env = {"rows": 96, "cols": 7, "compute.mxu.rows": 5}
    cases = {
        "2 * rows + cols // 3": 2 * 96 + 2,
        "-rows ** 2": -(96 ** 2),
        "(rows + cols) % 10": 3,
        "ceil(log2(rows))": 7,
        "max(rows, cols, 100) / 4": 25.0,
        "compute.mxu.rows * 2": 10,
        "sqrt(floor(16.7))": 4.0,
    }
    for text, expected in cases.items():
        assert parse_expression(text, names).evaluate(env) == expected, text


def test_runaway_exponent_is_refused_when_evaluated():
    with pytest.raises(ValueError):
        parse_expression("2 ** (rows * 1000)", {"rows"}).evaluate({"rows": 100})


def _bits(v) -> int:
    return v.bit_length() if isinstance(v, int) else 0


@pytest.mark.parametrize("text, env", [
    ("((2**1000)**1000)**1000", {}),       # 10^9 bits if computed: minutes, then MemoryError
    ("9**9**9", {}),                        # 9^387420489: hours
    ("((rows ** 99) ** 99) ** 99", {"rows": 3}),
    ("2**255 * 2**255 * 2**255 * 2**255", {}),
    ("10.0 ** 400 ** 2", {}),
    ("round(2**255, -10**9)", {}),          # 10^(10^9): a billion-digit power of ten
])
def test_an_expression_that_would_run_long_is_refused_before_any_big_operation(monkeypatch, text, env):
    import dse.search.expressions as E

    sizes: list[int] = []  # bits of the operands and result of every operation that ran

    def spy(fn):
        def op(a, b):
            sizes.append(max(_bits(a), _bits(b)))
            result = fn(a, b)
            sizes.append(_bits(result))
            return result
        return op

    for node, fn in list(E._BINARY.items()):
        monkeypatch.setitem(E._BINARY, node, spy(fn))
    monkeypatch.setitem(E.FUNCTIONS, "round", spy(round))
    with pytest.raises(ValueError, match="out of range|too large|out of the float range|digits"):
        parse_expression(text, set(env)).evaluate(env)
    # every operation that ran had operands of at most 256 bits and a result of at most 512
    # (a 256-bit multiply is ~100 ns): the big one was refused from its operands' sizes before
    # it ran; refusing its result afterwards would have meant computing 10^9 bits first
    assert max(sizes, default=0) <= 2 * E.MAX_INT_BITS


def test_an_expression_with_too_many_operations_is_refused_when_parsed():
    # 160 groups "(1+1)" joined by "+": 160 x 3 nodes + 159 additions = 639 > 500; 959 characters
    text = "+".join(["(1+1)"] * 160)
    assert len(text) < 1000
    with pytest.raises(SpecError, match="639 terms and operators"):
        parse_expression(text)
    assert parse_expression("+".join(["(1+1)"] * 80)).evaluate({}) == 160


def test_unknown_sampler_and_missing_budget(tmp_path):
    assert "unknown sampler 'annealing'" in error_of(tmp_path, sampler="annealing")
    assert "give n_trials or timeout" in error_of(tmp_path, n_trials=None)
    assert "a continuous range" in error_of(tmp_path, sampler="grid", derived={}, parameters={
        "compute.pe.clock": {"low": 1e8, "high": 1e9}})


def test_pareto_ranks_by_hand():
    # minimise both: (1,1), (2,0), (0,2) are the front; (2,2) is behind (1,1); (3,3) behind (2,2)
    pts = [[1, 1], [2, 0], [0, 2], [2, 2], [3, 3]]
    assert pareto_ranks(pts, ["minimize", "minimize"]).tolist() == [0, 0, 0, 1, 2]
    # maximise the first instead: (3,3) and (2,0) lead; (2,0) dominates (1,1) and (2,2),
    # and (1,1) dominates (0,2)
    assert pareto_ranks(pts, ["maximize", "minimize"]).tolist() == [1, 0, 2, 1, 0]
    assert pareto_ranks([[5], [7], [5], [1]], ["maximize"]).tolist() == [1, 0, 1, 2]


@pytest.mark.parametrize("name", ["quickstart", "tpu-v1-75w", "multiobjective"])
def test_bundled_studies_resolve_by_name(name):
    assert name in bundled_names("studies")
    st = resolve_study(name)
    assert st.space.parameters and st.objectives
    assert all(not math.isnan(w.weight) for w in st.workloads)


def test_quickstart_runs_a_few_trials():
    df = run_study("quickstart", n_trials=3)
    agg = df[df["workload"] == ALL]
    assert len(agg) == 3 and (agg["state"] == "COMPLETE").all()


def test_unknown_study_name_lists_the_bundled_ones(monkeypatch, capsys):
    code, err = sweep_exit(monkeypatch, capsys, ["quikstart"])
    assert code == 2 and err.count("\n") == 1
    assert "no study file or bundled study named 'quikstart'" in err and "quickstart" in err


def test_a_range_with_units_of_another_dimension_is_rejected(tmp_path):
    msg = error_of(tmp_path, parameters={"compute.pe.clock": {"low": "300 MHz", "high": "1 GB"}})
    assert "'1 GB' is a size in bytes, expected a frequency" in msg and "compute.pe.clock.high" in msg
