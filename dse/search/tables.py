"""The trial table (one row per trial and workload, plus an aggregated ``__all__`` row),
Pareto ranks, and the files of an output directory: trials.parquet/.csv, study.json
and best/<rank>-trial<N>.yaml. Everything is rebuilt from the Optuna storage."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import pandas as pd
import yaml

from dse.search.objective import DUPLICATE_ATTR, ERROR_ATTR, RESULT_ATTR, aggregate, constraint_values
from dse.workloads.ops import Workload

if TYPE_CHECKING:
    from dse.search.resolve import Study

ALL = "__all__"
FIXED_COLUMNS = ["trial", "workload", "state", "feasible", "pareto_rank", "error", "duplicate_of"]
#: Parquet schema metadata key holding {column: unit} (Pint-readable; '1' a pure number, '' text).
UNITS_KEY = b"dse.units"


def constraint_column(c) -> str:
    """The column of a constraint's value (<= 0: met), named for the constraint itself."""
    return f"constraint: {c.text}"


def pareto_ranks(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Non-dominated sorting: 0 for the front, 1 for the front once it is removed, ...

    ``values`` is (n_trials, n_objectives); equal points share a rank.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=int)
    v = np.asarray(values, dtype=float) * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    if v.shape[1] == 1:  # one objective: dense rank of the value
        _, inverse = np.unique(v[:, 0], return_inverse=True)
        return inverse.astype(int)
    le = (v[:, None, :] <= v[None, :, :]).all(axis=2)
    lt = (v[:, None, :] < v[None, :, :]).any(axis=2)
    dominates = le & lt                      # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)            # how many points dominate j
    rank = np.full(n, -1, dtype=int)
    remaining = np.ones(n, dtype=bool)
    r = 0
    while remaining.any():
        front = remaining & (count == 0)
        rank[front] = r
        remaining &= ~front
        count = count - dominates[front].sum(axis=0)
        r += 1
    return rank


def _param_columns(st: "Study") -> list[str]:
    return [f"param_{p.path}" for p in st.space.parameters] + [f"param_{d.path}" for d in st.space.derived]


def _feasible(cons: list[float]) -> bool:
    return all(math.isnan(c) or c <= 0 for c in cons)


def trial_table(trials: list[optuna.trial.FrozenTrial], st: "Study") -> pd.DataFrame:
    """One row per (trial, workload) plus an ``__all__`` row per trial, sorted by trial."""
    labels = [w.label for w in st.workloads]
    weights = [w.weight for w in st.workloads]
    rows: list[dict[str, Any]] = []
    agg_index: dict[int, int] = {}
    for t in sorted(trials, key=lambda t: t.number):
        result = t.user_attrs.get(RESULT_ATTR) or {}
        metrics: dict[str, dict] = result.get("metrics") or {}
        derived = result.get("derived") or {}
        params = {f"param_{p.path}": t.params.get(p.path) for p in st.space.parameters}
        params.update({f"param_{d.path}": derived.get(d.path) for d in st.space.derived})
        complete = t.state == optuna.trial.TrialState.COMPLETE
        error = t.user_attrs.get(ERROR_ATTR)
        if error is None and t.state == optuna.trial.TrialState.FAIL:
            error = "interrupted"
        per = [metrics.get(label, {}) for label in labels]
        for label, m in [*zip(labels, per), (ALL, aggregate(per, weights) if metrics else {})]:
            cons = constraint_values(st.constraints, [m] if label != ALL else per)
            row = {"trial": t.number, "workload": label, "state": t.state.name,
                   "feasible": complete and _feasible(cons), "pareto_rank": -1, "error": error,
                   "duplicate_of": int(t.user_attrs.get(DUPLICATE_ATTR, -1)), **params, **m}
            row.update({constraint_column(c): v for c, v in zip(st.constraints, cons)})
            rows.append(row)
        agg_index[t.number] = len(rows) - 1
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=FIXED_COLUMNS + _param_columns(st))
    _rank(df, trials, st, agg_index)
    first = FIXED_COLUMNS + _param_columns(st)
    cons = [constraint_column(c) for c in st.constraints]
    rest = [c for c in df.columns if c not in first and c not in cons]
    df = df[first + rest + cons]
    df["pareto_rank"] = df["pareto_rank"].astype(int)
    df["feasible"] = df["feasible"].astype(bool)
    return df.reset_index(drop=True)


def _rank(df: pd.DataFrame, trials, st: "Study", agg_index: dict[int, int]) -> None:
    """Pareto rank of feasible complete trials on their objective values; -1 for the rest.

    Every row of a trial carries its trial's rank, so per-workload rows of the
    front are easy to select.
    """
    ok = [t for t in trials if t.number in agg_index and df.at[agg_index[t.number], "feasible"]
          and t.values is not None]
    if not ok:
        return
    ranks = pareto_ranks(np.array([t.values for t in ok]), st.directions)
    by_trial = {t.number: int(r) for t, r in zip(ok, ranks)}
    df["pareto_rank"] = df["trial"].map(by_trial).fillna(-1).astype(int)


def best_trials(df: pd.DataFrame, st: "Study", k: int) -> pd.DataFrame:
    """The ``k`` best feasible designs (aggregated rows): lowest Pareto rank, then the first
    objective, then trial number."""
    agg = df[(df["workload"] == ALL) & (df["pareto_rank"] >= 0)]
    if agg.empty or k == 0:
        return agg.head(0)
    first = st.objectives[0]
    key = agg[first.metric] if first.metric in agg else pd.Series(0.0, index=agg.index)
    order = agg.assign(_key=-key if first.direction == "maximize" else key)
    return order.sort_values(["pareto_rank", "_key", "trial"]).head(k).drop(columns="_key")


def design_yaml(st: "Study", row: pd.Series) -> str:
    """A ready-to-run architecture file: the base file with the trial's values set."""
    overrides = {}
    for col, v in row.items():
        if isinstance(col, str) and col.startswith("param_") and v is not None and not _isnan(v):
            overrides[col[len("param_"):]] = _plain(v)
    from dse.search.objective import design_doc
    from dse.serving.spec import split_serving

    design, serving = split_serving(overrides)
    data = design_doc(st.base_raw, design)
    trial = int(row["trial"])
    data["name"] = f"{st.base_arch.name}-{st.name}-trial{trial}"
    objectives = ", ".join(f"{o.metric}={_plain(row.get(o.metric))!r}" for o in st.objectives)
    data["description"] = f"trial {trial} of study '{st.name}' ({objectives})"
    rank = "Pareto rank" if len(st.objectives) > 1 else "rank"
    header = (f"# Found by `dse sweep` (study '{st.name}', trial {trial}, {rank} "
              f"{int(row['pareto_rank'])}).\n# {objectives}\n")
    header += "".join(f"# {k} = {v!r}\n" for k, v in design.items())
    header += "".join(f"# served with {k} = {v!r} (not a chip field)\n" for k, v in serving.items())
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _plain(v: Any) -> Any:
    """numpy scalars to Python numbers, whole floats to ints (YAML stays readable)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _for_files(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing numbers and strings become strings (Parquet wants one type)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and not _isnan(v)}
            if len(kinds) > 1:
                out[col] = out[col].map(lambda v: None if v is None or _isnan(v) else str(v))
    return out


def column_units(df: pd.DataFrame, st: "Study") -> dict[str, str]:
    """{column: unit} for the trial table: parameters by the dimension of the architecture
    field they set, metrics and constraints by their names."""
    from dse.columns import metric_unit, param_unit
    from dse.search.objective import CAPACITY_MARGIN

    units: dict[str, str] = {}
    constraints = {constraint_column(c): c for c in st.constraints}
    for col in df.columns:
        if col.startswith("param_"):
            sample = next((v for v in df[col] if v is not None and not _isnan(v)), None)
            units[col] = param_unit(st.base_arch, col[len("param_"):], sample)
        elif col in constraints:
            c = constraints[col]
            units[col] = metric_unit(c.metric or CAPACITY_MARGIN) or "1"
        else:
            unit = metric_unit(col)
            numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
            units[col] = unit if unit is not None else ("1" if numeric else "")
    return units


def _write_parquet(path: Path, df: pd.DataFrame, units: dict[str, str]) -> None:
    """Parquet with each column's unit in its field metadata and all of them in the schema's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [f.with_metadata({"unit": units.get(f.name, "")}) for f in table.schema]
    meta = dict(table.schema.metadata or {})
    meta[UNITS_KEY] = json.dumps(units).encode()
    table = pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=meta))
    pq.write_table(table, path)


def read_units(path: str | Path) -> dict[str, str]:
    """{column: unit} of a trials.parquet written by dse (empty for other files)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[UNITS_KEY]) if UNITS_KEY in meta else {}


def study_info(st: "Study", sampler: str, storage_url: str | None, optuna_name: str) -> dict:
    spec = st.spec
    return {
        "name": st.name,
        "description": spec.description,
        "architecture": st.base_arch.name,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in st.objectives],
        "parameters": [p.path for p in st.space.parameters],
        "derived": [d.path for d in st.space.derived],
        "categorical": [p.path for p in st.space.parameters if p.kind == "categorical" and not p.is_numeric],
        "workloads": [{"name": w.label, "spec": w.spec, "weight": w.weight} for w in st.workloads],
        "constraints": [c.text for c in st.constraints],
        "sampler": sampler,
        "sampler_requested": spec.sampler,
        "seed": spec.seed,
        "storage": storage_url,
        "optuna_study_name": optuna_name,
    }


def write_outputs(out_dir: Path, df: pd.DataFrame, st: "Study", info: dict, detail: bool = True) -> None:
    """trials.parquet, trials.csv, study.json and best/*.yaml in ``out_dir``; with ``detail``,
    also each best design's per-op rows and timeline (one simulation per new best design)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _for_files(df)
    units = column_units(df, st)
    _atomic_write(out_dir / "trials.parquet", lambda p: _write_parquet(p, files, units))
    _atomic_write(out_dir / "trials.csv", lambda p: files.to_csv(p, index=False))
    info = {**info, "units": units}
    _atomic_write(out_dir / "study.json",
                  lambda p: p.write_text(json.dumps(info, indent=2, default=str) + "\n"))
    best_dir = out_dir / "best"
    best_dir.mkdir(exist_ok=True)
    for old in best_dir.glob("*-trial*.yaml"):
        old.unlink()
    keep: set[str] = set()
    for _, row in best_trials(df, st, st.spec.best_designs).iterrows():
        text = design_yaml(st, row)
        stem = f"{int(row['pareto_rank'])}-trial{int(row['trial'])}"
        _atomic_write(best_dir / f"{stem}.yaml", lambda p, text=text: p.write_text(text))
        keep.add(stem)
        if detail:
            _write_detail(best_dir, stem, text, st)
    for old in best_dir.glob("*.parquet"):
        if old.name.split(".", 1)[0] not in keep:
            old.unlink()


def _write_detail(best_dir: Path, stem: str, design_text: str, st: "Study") -> None:
    """Per-op rows and the timeline of a best design on every workload of the study (a
    ``workload`` column tells them apart).

    The report draws op bounds, rooflines and the utilisation timeline from these files (it
    never simulates); written once per best design, since a trial's result does not change.
    """
    ops_path = best_dir / f"{stem}.ops.parquet"
    if ops_path.exists() or not st.workloads or not isinstance(st.workloads[0].workload, Workload):
        return  # (a serving run has no single op table)
    from dse.errors import DseError
    from dse.sim.engine import simulate
    from dse.spec.loader import architecture_from_doc
    from dse.spec.yaml_io import parse_yaml_text

    ops, timeline = [], []
    try:
        arch = architecture_from_doc(parse_yaml_text(design_text, f"{stem}.yaml"))
    except DseError:
        return
    for w in st.workloads:
        try:
            result = simulate(arch, w.workload)
        except DseError:
            continue  # a workload this design cannot run has no op detail to show
        ops.append(result.ops.assign(workload=w.label))
        timeline.append(pd.DataFrame(result.timeline).assign(workload=w.label))
    if not ops:
        return
    _atomic_write(best_dir / f"{stem}.timeline.parquet",
                  lambda p: pd.concat(timeline, ignore_index=True).to_parquet(p, index=False))
    _atomic_write(ops_path, lambda p: pd.concat(ops, ignore_index=True).to_parquet(p, index=False))
