"""Mutated inputs for the fuzz test and the fuzz campaign (benchmarks/fuzz_campaign.py):
architectures, studies and traces, each derived from a valid one by hostile edits (huge or
non-finite numbers, wrong types and units, deep nesting, alias bombs, repeated keys,
markup and control characters in names, deleted and mistyped fields, truncated text)."""
from __future__ import annotations

import copy
import datetime
import json
import random
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_ARCH = yaml.safe_load((ROOT / "architectures" / "tpu-v1-like.yaml").read_text())
BASE_STUDY = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
BASE_TRACE = yaml.safe_load((ROOT / "dse" / "workloads" / "examples" / "two_layer_mlp.yaml").read_text())

HOSTILE: list[Any] = [
    0, -1, 1, 2**64, 2**10000, 10**52, 1e300, -1e300, 5e-324, 1e-300, float("nan"), float("inf"),
    "nan", "inf", "-inf", "1e999", "9**9**9 Hz", "1" * 3000, "", " ", "[/]", "chip[/]", "\x1b[31mred",
    "a\x00b", True, None, [], {}, [[[[[]]]]], {"a": {"b": {"c": None}}}, "3 GHz", "24 MiB", "819 GB/s",
    "0.2 pJ", "-5 ns", "1e52", "1 fm", "256", "4", "12 parsecs", "2**64", "x" * 200,
    "weight_stationary", ["weight_stationary"], "(-8)**0.5", "((2**1000)**1000)**1000",
    "-" * 3000 + "1", "+".join(["1"] * 3000), "rows * 2**60", "1e-300", 4096, 65536, 1e9, 3.5,
    # YAML's other types (a date, binary, a set) and keys that are not strings
    datetime.date(2020, 1, 1), b"\x00\xff", {1, 2}, {1: "a", None: "b"}, "fc1", "-1 GB/s", "1e-30 s",
    "0x10", "1_000", ".inf", "yes", "☃ chip",
]
MISTYPED = ["bandwith", "capcity", "clok", "rows_", "dataflw", "n_trail", "objective", "nme", "kind_"]


def _paths(data: Any) -> list[tuple]:
    """Every path into ``data``, down to 12 levels (iteratively)."""
    out, todo = [], [(data, ())]
    while todo:
        item, prefix = todo.pop()
        out.append(prefix)
        if len(prefix) >= 12 or len(out) > 5000:
            continue
        if isinstance(item, dict):
            todo += [(v, prefix + (k,)) for k, v in item.items()]
        elif isinstance(item, list):
            todo += [(v, prefix + (i,)) for i, v in enumerate(item)]
    return out


def _parent(data: Any, path: tuple) -> Any:
    cur = data
    for p in path[:-1]:
        cur = cur[p]
    return cur


def mutate_data(base: Any, rng: random.Random, n_edits: int | None = None) -> Any:
    """``base`` with 1-3 structural edits at random places."""
    data = copy.deepcopy(base)
    for _ in range(n_edits or rng.randint(1, 3)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = _parent(data, path)
        key = path[-1]
        op = rng.random()
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif op < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.85 and isinstance(parent, dict):
            parent[rng.choice(MISTYPED)] = rng.choice([None, 1, "x"])
        elif op < 0.88:
            parent[key] = [parent[key]] * rng.choice([0, 2, 40])
        elif op < 0.92:  # a value that belongs elsewhere: a unit string on a count, a name in deps
            source = rng.choice(paths)
            if source[: len(path)] != path:
                parent[key] = copy.deepcopy(_parent(data, source)[source[-1]])
        else:
            deep: Any = 1
            for _ in range(rng.choice([10, 70, 300])):
                deep = [deep]
            parent[key] = deep
    return data


def _dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, RecursionError, ValueError):
        try:
            return json.dumps(data, default=str)
        except (RecursionError, ValueError):
            return "name: x\nnested: " + "[" * 3000 + "]" * 3000 + "\n"


def text_attack(text: str, rng: random.Random) -> str:
    """Attacks that only exist as text: repeated keys, alias bombs, recursion, truncation."""
    lines = text.splitlines()
    op = rng.random()
    if op < 0.2 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i + 1, lines[i])  # a repeated key (or list item)
        return "\n".join(lines) + "\n"
    if op < 0.35:
        bomb = ["lol0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for k in range(1, rng.choice([3, 9])):
            bomb.append(f"lol{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]")
        return "\n".join(bomb) + "\n" + text
    if op < 0.45:
        return "rec: &r [1, *r]\n" + text
    if op < 0.6:
        return text[: rng.randrange(max(len(text), 1))]
    if op < 0.7:
        return "x: " + "[" * rng.choice([100, 5000, 100000]) + "\n" + text
    if op < 0.8:
        return text.replace(": ", ":", rng.randint(1, 3))
    if op < 0.9:
        return "\t" + text
    return text + "\n" + rng.choice(["name: twice", "---\nname: two", "? [a]\n: b", "!!python/object:os.system x"])


def architecture_text(rng: random.Random) -> str:
    text = _dump(mutate_data(BASE_ARCH, rng))
    return text_attack(text, rng) if rng.random() < 0.3 else text


def study_text(rng: random.Random, arch_path: str = "tpu-v1-like") -> str:
    base = dict(BASE_STUDY, architecture=arch_path, n_trials=2)
    text = _dump(mutate_data(base, rng))
    return text_attack(text, rng) if rng.random() < 0.3 else text


def trace_text(rng: random.Random) -> tuple[str, str]:
    """(text, suffix): a trace as YAML or JSON."""
    data = mutate_data(BASE_TRACE, rng)
    if rng.random() < 0.1:  # many independent ops
        data = {"name": "many", "ops": [{"name": f"o{i}", "kind": "matmul", "m": 8, "n": 8, "k": 8}
                                        for i in range(rng.choice([100, 5000]))]}
    if rng.random() < 0.5:
        try:
            return json.dumps(data, allow_nan=True, default=str), ".json"
        except (ValueError, RecursionError, OverflowError):
            pass
    text = _dump(data)
    return (text_attack(text, rng) if rng.random() < 0.3 else text), ".yaml"
