"""Workload specs, trace files, op tables and training steps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dse.errors import SpecError
from dse.workloads import list_generators, load_workload, op_table, parse_trace
from dse.workloads.dag import topological_order
from dse.workloads.ops import ROLES

EXAMPLE = Path(__file__).resolve().parents[1] / "dse" / "workloads" / "examples" / "two_layer_mlp.yaml"
GENERATORS = ["gemm", "mlp", "resnet50", "bert", "bert-base", "bert-large", "gpt", "lstm",
              "moe", "dlrm"]

# ---- spec strings -----------------------------------------------------------


def test_every_generator_is_listed_with_its_defaults():
    infos = {g.name: g for g in list_generators()}
    assert set(GENERATORS) <= set(infos)
    assert infos["gpt"].params["phase"] == "prefill"
    assert infos["bert-large"].params["layers"] == 24
    for info in infos.values():
        assert info.description and "\n" not in info.description
        assert "precision" in info.params and info.params["train"] is False


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_gives_a_valid_deterministic_dag(name):
    small = {"lstm": "lstm:seq=4", "gpt": "gpt:layers=2,seq=64", "bert-large": "bert-large:layers=2",
             "moe": "moe:skew=1.2,seed=3"}
    spec = small.get(name, name)
    a, b = load_workload(spec), load_workload(spec)
    assert [op.name for op in topological_order(a.ops)] == [op.name for op in a.ops]
    assert a.ops == b.ops and a.samples == b.samples
    assert a.macs > 0 and a.samples >= 1


def test_parameters_are_parsed_as_int_float_bool_and_text():
    wl = load_workload("gpt:layers=2,d_model=256,heads=4,seq=128,phase=decode,batch=8")
    assert wl.params["layers"] == 2 and wl.params["phase"] == "decode" and wl.samples == 8
    wl = load_workload("moe:tokens=1e3,capacity_factor=2,d_model=64,d_ff=128")
    assert wl.samples == 1000 and wl.params["capacity_factor"] == 2.0
    assert load_workload("mlp:widths=64-128-32,train=true").params["train"] is True


def test_batch_and_precision_arguments_override_the_spec():
    wl = load_workload("resnet50:batch=2", batch=4, precision="fp16")
    assert wl.samples == 4
    assert {op.precision for op in wl.ops} == {"fp16"}
    assert load_workload("moe:d_model=64,d_ff=128", batch=512).samples == 512  # tokens


def test_unknown_workload_lists_the_known_names():
    with pytest.raises(SpecError) as e:
        load_workload("resnet51")
    assert "resnet51" in str(e.value) and "resnet50" in str(e.value) and "gpt" in str(e.value)


def test_unknown_parameter_is_named_and_valid_ones_listed_with_defaults():
    with pytest.raises(SpecError) as e:
        load_workload("gpt:layer=24")
    msg = str(e.value)
    assert "'layer'" in msg and "layers=12" in msg and "phase=prefill" in msg


@pytest.mark.parametrize("spec, field", [("gpt:phase=train", "phase"), ("gpt:layers=two", "layers"),
                                         ("gemm:precision=int9", "precision"),
                                         ("gpt:heads=5", "heads"), ("mlp:batch=0", "batch"),
                                         ("mlp:widths=abc", "widths")])
def test_bad_parameter_values_name_the_field(spec, field):
    with pytest.raises(SpecError) as e:
        load_workload(spec)
    assert e.value.field == field


def test_gemm_has_no_batch_to_override():
    with pytest.raises(SpecError):
        load_workload("gemm", batch=8)


def test_missing_file_is_a_spec_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as e:
        load_workload(str(missing))
    assert e.value.where == str(missing) and "file not found" in str(e.value)


# ---- op table -------------------------------------------------------------------


def test_op_table_has_one_row_per_op_and_bytes_per_role():
    wl = load_workload("gpt:layers=1,seq=32,phase=decode")
    df = op_table(wl)
    assert len(df) == len(wl.ops)
    for col in ["name", "kind", "precision", "macs", "vector_ops", "ops", "arithmetic_intensity",
                "deps", *(f"bytes_{r}" for r in ROLES)]:
        assert col in df.columns
    assert df["macs"].sum() == wl.macs
    assert df["bytes_kv_cache"].sum() == pytest.approx(wl.bytes_by_role()["kv_cache"])
    scores = df.set_index("name").loc["layer0.scores"]
    assert scores["deps"] == "layer0.q_proj,layer0.kv_proj"


# ---- trace files ------------------------------------------------------------------


def test_example_trace_loads_with_hand_counted_macs():
    wl = load_workload(str(EXAMPLE))
    assert wl.name == "two_layer_mlp" and wl.samples == 32
    assert wl.macs == 32 * 1024 * 4096 + 32 * 4096 * 1024
    assert [op.deps for op in wl.ops] == [(), ("fc1",), ("relu1",)]


def test_json_trace_equals_the_yaml_one(tmp_path):
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(yaml.safe_load(EXAMPLE.read_text()), indent=2))
    assert load_workload(str(path)).ops == load_workload(str(EXAMPLE)).ops


def test_trace_ops_are_put_in_dependency_order():
    text = """
name: t
ops:
  - {name: b, kind: vector, elements: 4, deps: [a]}
  - {name: a, kind: matmul, m: 2, n: 2, k: 2}
"""
    assert [op.name for op in parse_trace(text).ops] == ["a", "b"]


def test_trace_precision_override(tmp_path):
    assert {op.precision for op in load_workload(str(EXAMPLE), precision="bf16").ops} == {"bf16"}


BASE = EXAMPLE.read_text()


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as e:
        parse_trace(text, "t.yaml")
    return e.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, field, needle", [
    ("m: 32              # batch rows", "m: 0", "ops[0].m", "m: 0"),
    ("m: 32              # batch rows", "m: -3", "ops[0].m", "m: -3"),
    ("    ops_per_element: 1\n", "    ops_per_elemnt: 1\n", "ops[1].ops_per_elemnt", "ops_per_elemnt"),
    ("deps: [relu1]", "deps: [relu9]", "ops[2].deps[0]", "relu9"),
    ("name: fc2", "name: fc1\n    tag: twice", "ops[2].name", "tag: twice"),
    ("kind: vector", "kind: vectr", "ops[1].kind", "vectr"),
    ("    k: 4096\n", "    k: 4096\n    k: 12\n", "ops[2].k", "k: 12"),
])
def test_trace_errors_give_line_and_field(old, new, field, needle):
    text = BASE.replace(old, new)
    err = _error(text)
    assert err.field == field
    assert err.where == f"t.yaml:{_line_of(text, needle) - (1 if 'tag: twice' in needle else 0)}"


def test_trace_cycle_is_an_error():
    text = "name: c\nops:\n  - {name: a, kind: vector, elements: 1, deps: [b]}\n" \
           "  - {name: b, kind: vector, elements: 1, deps: [a]}\n"
    err = _error(text)
    assert "cycle" in str(err) and err.where == "t.yaml:3"


def test_self_dependency_is_a_cycle():
    assert "cycle" in str(_error("name: c\nops:\n  - {name: a, kind: vector, elements: 1, deps: [a]}\n"))


def test_missing_field_points_at_its_op():
    text = BASE.replace("    n: 1024\n", "")
    err = _error(text)
    assert err.field == "ops[2].n" and err.where == f"t.yaml:{_line_of(text, 'name: fc2')}"


def test_malformed_yaml_reports_the_parser_line():
    text = "name: x\nops:\n  - name: a\n    kind: [matmul\n    m: 1\n"
    err = _error(text)
    assert "malformed YAML" in str(err) and err.where.startswith("t.yaml:")
    assert int(err.where.split(":")[1]) >= 4


def test_conv_geometry_is_checked():
    text = ("name: x\nops:\n  - name: c\n    kind: conv2d\n    in_channels: 3\n"
            "    out_channels: 8\n    height: 4\n    width: 4\n    groups: 2\n")
    assert _error(text).field == "ops[0].in_channels"


# ---- training ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["mlp", "resnet50", "bert:layers=2", "gpt:layers=2,seq=64",
                                  "lstm:seq=4", "dlrm:batch=64", "moe:d_model=64,d_ff=256"])
def test_a_training_step_costs_three_forward_passes_of_macs(spec):
    fwd = load_workload(spec)
    step = load_workload(spec + (",train=true" if ":" in spec else ":train=true"))
    assert step.macs == 3 * fwd.macs
    assert [op.name for op in topological_order(step.ops)] == [op.name for op in step.ops]


def test_training_writes_gradients_and_runs_adam_over_every_weight():
    widths = [256, 512, 128]
    step = load_workload("mlp:widths=256-512-128,batch=16,train=true")
    weights = widths[0] * widths[1] + widths[1] * widths[2]
    grads = [op for op in step.ops if op.out_role == "gradients"]
    assert sum(op.m * op.n for op in grads) == weights  # one dW per weight matrix
    (adam,) = [op for op in step.ops if op.tag == "optimizer"]
    assert adam.elements == weights and adam.inputs == 4 and adam.in_role == "optimizer_state"
    assert adam.ops_per_element == pytest.approx(10)
    assert set(adam.deps) == {op.name for op in grads}


def test_training_keeps_no_kv_cache():
    step = load_workload("gpt:layers=1,seq=16,train=true")
    roles = {r for op in step.ops for r in (op.a_role, op.b_role, op.out_role, op.in_role)}
    assert "kv_cache" not in roles and "gradients" in roles


def test_each_generator_is_found_by_loading_only_its_own_module():
    # a fresh interpreter: dse.workloads.models.MODULES names, for each generator, the one
    # module that registers it (what a run imports), and lists every generator there is
    import subprocess
    import sys

    probe = """
import sys
from dse.workloads import models, registry
models.load("resnet50")
assert "dse.workloads.models.llm_config" not in sys.modules and "dse.workloads.models.gpt" not in sys.modules
for name, module in models.MODULES.items():
    models.load(name)
    assert name in registry.generators(), name
    assert f"dse.workloads.models.{module}" in sys.modules, name
models.load()
assert set(registry.generators()) == set(models.MODULES), sorted(set(registry.generators()) ^ set(models.MODULES))
print("ok")
"""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": ""})
    assert proc.stdout.strip() == "ok", proc.stderr
