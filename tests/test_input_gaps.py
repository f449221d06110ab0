"""Inputs that ran with exit 0 and nonsense, or failed for the wrong reason: each now works or
stops with one line naming the file (and line) and the field, exit 2. Found by the input reviewer."""
from __future__ import annotations

import io
import json

import pandas as pd

from test_cli_errors import assert_one_line_error, dse, line_of  # (the CLI's one-line errors)


def test_a_prefetch_from_a_tier_to_itself_is_refused(tmp_path):
    # it ran with exit 0: optane 'copied' 1 MiB of weights onto itself, 390 us of nonsense
    from dse.spec.loader import bundled_dir

    text = (bundled_dir("architectures") / "dram-nvm-tiered.yaml").read_text()
    old = "  - {role: weights, from: optane, to: ddr4}\n"
    assert old in text
    text = text.replace(old, "  - {role: weights, from: optane, to: optane}\n")
    p = tmp_path / "arch.yaml"
    p.write_text(text)
    assert_one_line_error(dse("check", str(p)), f"{p}:{line_of(text, 'to: optane}')}", "prefetch[0].to",
                          "from 'optane' to itself")


def test_a_generator_spec_whose_value_is_a_json_file_is_not_taken_for_a_path(tmp_path):
    # 'llm:model=cfg.json' ends in .json: it was read as a file path and 'file not found'
    (tmp_path / "tiny.json").write_text(json.dumps({
        "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 2048}))
    proc = dse("workload", "llm:model=tiny.json", "-f", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ops = pd.read_csv(io.StringIO(proc.stdout)).set_index("name")
    assert ops.loc["layer0.q_proj", "macs"] == 1 * 64 * 64   # one decode token x d_model x heads * head_dim
    proc = dse("run", "h100-class", "-w", "llm:model=tiny.json", "-f", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_replay_refuses_an_unknown_format_and_takes_compares_short_memory_names(tmp_path):
    # -f xml printed a table with exit 0; -m ddr4 said "did you mean gddr6" while dse compare took it
    p = tmp_path / "t.trace"
    p.write_text("0 0x0 R 64\n10 0x40 W 64\n")
    assert_one_line_error(dse("replay", str(p), "-f", "xml"), "--format", "'xml'", "table, csv, json")
    short = dse("replay", str(p), "-m", "ddr4,ddr5,lpddr5,optane", "-f", "csv")
    assert short.returncode == 0, short.stderr
    full = dse("replay", str(p), "-m", "ddr4-3200,ddr5-4800,lpddr5-6400,optane-pmem", "-f", "csv")
    table = pd.read_csv(io.StringIO(short.stdout))
    assert table["memory"].tolist() == ["ddr4-3200", "ddr5-4800", "lpddr5-6400", "optane-pmem"]
    assert short.stdout == full.stdout
