"""Hostile and slipped input: bounded YAML, numbers out of range, names that look like
markup, implausible values. Each is one line naming file (line) and field, exit 2,
or a warning; the expected lines are counted by hand in the texts below."""
from __future__ import annotations

import copy
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from archs import BASE
from dse.errors import SpecError, SpecWarning
from dse.spec.loader import architecture_from_doc
from dse.spec.yaml_io import MAX_DEPTH, parse_json_text, parse_yaml_text
from dse.units import to_si


def dse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def error_of(text: str, json_: bool = False) -> SpecError:
    with pytest.raises(SpecError) as info:
        (parse_json_text if json_ else parse_yaml_text)(text, "f.yaml")
    return info.value


def test_nesting_beyond_the_limit_is_refused_at_its_line_without_recursing():
    # 100,000 open brackets would overflow the C stack of libyaml's composer
    assert "nested more than" in str(error_of("a: 1\nb: " + "[" * 100_000 + "]" * 100_000))
    err = error_of("a: 1\nb: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))
    assert err.where == "f.yaml:2"
    assert error_of("[" * 50_000 + "]" * 50_000, json_=True).where == "f.yaml:1"
    parse_yaml_text("a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2), "ok.yaml")


def test_an_alias_bomb_is_refused_quickly_and_a_recursive_alias_names_its_line():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip("abcdefghi", "bcdefghij"):
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    t0 = time.perf_counter()
    err = error_of("\n".join(levels) + "\n")  # 10^10 values once expanded
    assert "alias" in err.message and time.perf_counter() - t0 < 10
    assert error_of("x: 1\ny: &r {k: [1, *r]}\n").where == "f.yaml:2"
    # a modest, honest use of aliases still loads
    assert parse_yaml_text("a: &v [1, 2]\nb: *v\n", "ok.yaml").data == {"a": [1, 2], "b": [1, 2]}


def test_a_repeated_key_is_an_error_naming_both_lines_and_the_field():
    text = "name: x\nsram:\n  - name: buf\n    capacity: 1 MiB\n    capacity: 2 MiB\n"
    err = error_of(text)
    assert err.where == "f.yaml:5" and err.field == "sram[0].capacity" and "line 4" in err.message
    err = error_of('{"name": "x",\n "ops": [],\n "name": "y"}', json_=True)
    assert err.where == "f.yaml:3"
    # a YAML merge key is not a repeat
    assert parse_yaml_text("b: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", "m.yaml").data["c"] == {"x": 1, "y": 2}


def test_numbers_too_large_for_floats_or_python_are_errors_not_overflows():
    assert "characters is out of range" in str(error_of("rows: " + "9" * 5000 + "\n"))
    for value in (2**10000, "1e999 Hz", "1e308 THz", float("nan")):
        with pytest.raises(ValueError):
            to_si(value, "frequency")
    t0 = time.perf_counter()
    for text in ("9**9**9 Hz", "1" * 30_000 + " Hz", "2 ** 1000 Hz"):
        with pytest.raises(ValueError, match="cannot read"):
            to_si(text, "frequency")
    assert time.perf_counter() - t0 < 5
    assert to_si("819 GB/s", "bandwidth") == 819e9 and to_si("331 mm^2", "area") == 331.0


def _arch(**edits) -> dict:
    a = copy.deepcopy(BASE)
    for path, value in edits.items():
        cur = a
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur[int(p)] if p.isdigit() else cur[p]
        cur[parts[-1]] = value
    return a


def _load(data: dict):
    return architecture_from_doc(parse_yaml_text(yaml.safe_dump(data, sort_keys=False), "a.yaml"))


@pytest.mark.parametrize("path, value, field", [
    ("compute.0.rows", 10**52, "compute[0].rows"),
    ("compute.0.dataflow", [], "compute[0].dataflow"),
    ("memories.0.channels", 2**64, "memories[0].channels"),
    ("compute.0.cols", 7.4e19, "compute[0].cols"),           # a float past 2**63 for a count
    ("technology_node", "-5 ns", "technology_node"),          # a time for a length
    ("compute.0.macs_per_cycle", {"int8": float("inf")}, "compute[0].macs_per_cycle.int8"),
])
def test_counts_out_of_range_are_errors_naming_the_field(path, value, field):
    with pytest.raises(SpecError) as info:
        _load(_arch(**{path: value}))
    assert info.value.field == field


def test_a_design_a_study_derives_names_its_field_as_a_file_would():
    from dse.spec.variants import build_variant

    name = BASE["compute"][0]["name"]
    with pytest.raises(SpecError) as info:
        build_variant(copy.deepcopy(BASE), {f"compute.{name}.cols": 7.4e19})  # `cols: rows * 2**60`
    assert info.value.field == "compute[0].cols" and "7.4e+19 is too large" in info.value.message


def test_bare_numbers_and_implausible_values_warn_naming_the_field():
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        _load(_arch(**{"sram.0.capacity": 4, "memories.0.bandwidth_per_channel": 256,
                       "compute.0.clock": "1e300 Hz"}))
    text = [str(w.message) for w in got if issubclass(w.category, SpecWarning)]
    assert any("sram[0].capacity" in t and "bare number" in t and "4 B" in t for t in text), text
    assert any("memories[0].bandwidth_per_channel" in t and "bare number" in t for t in text), text
    assert any("compute[0].clock" in t and "implausibly large" in t for t in text), text
    with warnings.catch_warnings(record=True) as got:  # the unchanged base design: no warning
        warnings.simplefilter("always")
        _load(_arch())
    assert not [w for w in got if issubclass(w.category, SpecWarning)]


def test_a_mistyped_empty_field_on_a_technology_tier_is_reported(tmp_path):
    a = _arch()
    a["memories"][0] = {"name": "dram", "technology": "ddr4-3200", "bandwith": None}
    a["placement"] = {"weights": "dram"}
    with pytest.raises(SpecError) as info:
        _load(a)
    assert info.value.field == "memories[0].bandwith" and "bandwidth" in info.value.message


def test_names_are_printed_as_text_and_control_characters_escaped(tmp_path):
    a = _arch(name="chip[/]\x1b[31mred")
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(a, sort_keys=False))
    out = dse("check", str(p))
    assert out.returncode == 0, out.stderr
    assert "chip[/]\\x1b[31mred" in out.stdout and "\x1b" not in out.stdout
    run = dse("run", str(p), "-w", "gemm:m=64,n=64,k=64", "-f", "table")
    assert run.returncode == 0 and "\x1b" not in run.stdout, run.stderr


def test_a_result_that_would_be_infinite_is_an_error(tmp_path):
    # 5e-324 B/s (the smallest float) moves the gemm's bytes in longer than the float range
    a = _arch(**{"memories.0.bandwidth_per_channel": "5e-324 B/s"})
    a["placement"] = {"weights": "dram", "activations": "dram"}
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(a, sort_keys=False))
    out = dse("run", str(p), "-w", "gemm:m=64,n=64,k=64")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.splitlines()[-1]
    # the line names the input field that took the result out of range, not only the result
    assert "would be inf" in last and "memories[0].bandwidth_per_channel: " in last, last


def test_a_long_value_echoed_in_an_error_is_cut_to_its_start_and_length():
    from dse.workloads.trace import parse_trace

    with pytest.raises(SpecError) as info:
        parse_trace("name: t\nops:\n  - {name: a, kind: '" + "1" * 3000 + "', m: 8, n: 8, k: 8}\n", "t.yaml")
    line = str(info.value)
    # the 3,000 ones after pydantic's opening quote: 3,001 characters, shown as their first 40
    assert "'" + "1" * 39 + "... (3,001 characters)' found" in line and len(line) < 300
    assert info.value.where == "t.yaml:3" and info.value.field == "ops[0].kind"
