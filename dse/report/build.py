"""build_report: a study's output directory -> one HTML page and its Markdown twin.

Reads only what `dse sweep` wrote (trials.parquet or .csv, study.json, study.db,
best/*.yaml and, when present, best/<rank>-trial<N>.ops.parquet / .timeline.parquet);
never reruns a simulation, so it works on a study that is running or was interrupted.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dse import results as R
from dse.errors import SpecError
from dse.report.model import Figure, Report, Section, Table, fmt, plot_data

ALL = "__all__"
#: Metrics shown in the table of top designs after the objectives.
KEY_METRICS = [R.THROUGHPUT_SAMPLES, R.ENERGY_PER_SAMPLE, R.AVG_POWER, R.TOPS_PER_W, R.AREA, R.LATENCY]
#: Metrics a single-objective study is drawn against on its "front".
SECONDARY = [R.AREA, R.ENERGY_PER_SAMPLE, R.AVG_POWER, R.LATENCY]
TOP_N = 5
_BEST = re.compile(r"^(?P<rank>\d+)-trial(?P<trial>\d+)\.yaml$")


@dataclass
class BestDesign:
    rank: int
    trial: int
    yaml: Path

    def sidecar(self, kind: str) -> Path:
        """best/<rank>-trial<N>.<kind>.parquet (kind: ops or timeline)."""
        return self.yaml.with_name(f"{self.yaml.stem}.{kind}.parquet")


@dataclass
class StudyDir:
    """Everything a report reads from a study's output directory."""

    path: Path
    info: dict
    trials: pd.DataFrame
    best: list[BestDesign] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        objs = [(o["metric"], o.get("direction") or R.OBJECTIVE_METRICS.get(o["metric"], "minimize"))
                for o in self.info.get("objectives", [])]
        return [(m, d) for m, d in objs if m in self.trials]

    @property
    def params(self) -> list[str]:
        names = self.info.get("parameters") or [c[6:] for c in self.trials.columns if c.startswith("param_")]
        return [p for p in names if f"param_{p}" in self.trials]

    def aggregated(self) -> pd.DataFrame:
        """One row per trial: the ``__all__`` rows (or the only workload's rows)."""
        t = self.trials
        agg = t[t["workload"] == ALL] if (t["workload"] == ALL).any() else t.drop_duplicates("trial")
        return agg.reset_index(drop=True)


def _read_trials(path: Path) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    for name, reader in (("trials.parquet", pd.read_parquet), ("trials.csv", pd.read_csv)):
        f = path / name
        if f.is_file():
            try:
                return reader(f), notes
            except Exception as exc:  # a half-written file of a study still running
                notes.append(f"could not read {name} ({type(exc).__name__}); used the next table")
    raise SpecError("no trials.parquet or trials.csv: not a study output directory (run `dse sweep` first)",
                    where=str(path))


def _normalise(trials: pd.DataFrame) -> pd.DataFrame:
    t = trials.copy()
    defaults = {"workload": ALL, "state": "COMPLETE", "feasible": True, "pareto_rank": -1, "error": None}
    for col, value in defaults.items():
        if col not in t:
            t[col] = value
    t["feasible"] = t["feasible"].map(lambda v: str(v).lower() in ("true", "1", "1.0")).astype(bool)
    t["pareto_rank"] = pd.to_numeric(t["pareto_rank"], errors="coerce").fillna(-1).astype(int)
    t["trial"] = pd.to_numeric(t["trial"], errors="coerce").astype(int)
    for col in t.columns:
        if col.startswith("param_") or col in ("workload", "state", "error", R.BOUND):
            continue
        if t[col].dtype == object:
            converted = pd.to_numeric(t[col], errors="coerce")
            if converted.notna().sum() >= t[col].notna().sum():
                t[col] = converted
    return t


def load_study_dir(study_dir: str | Path) -> StudyDir:
    """The tables and files of a study output directory (SpecError if it is not one)."""
    path = Path(study_dir)
    if not path.is_dir():
        raise SpecError("no such directory", where=str(path))
    trials, notes = _read_trials(path)
    info: dict = {}
    try:
        info = json.loads((path / "study.json").read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a mapping")
    except FileNotFoundError:
        info = {}
        notes.append("study.json is missing: objectives and parameter names are guessed from the table")
    except (OSError, ValueError) as exc:  # damaged (a write cut short by a full disk, an editor)
        info = {}
        notes.append(f"study.json could not be read ({exc}): objectives and parameter names are guessed "
                     "from the table")
    trials = _normalise(trials)
    if not info.get("objectives"):
        info["objectives"] = [{"metric": R.TOPS_PER_W, "direction": "maximize"}]
    best = []
    for f in sorted((path / "best").glob("*.yaml")) if (path / "best").is_dir() else []:
        m = _BEST.match(f.name)
        if m:
            best.append(BestDesign(int(m["rank"]), int(m["trial"]), f))
    best.sort(key=lambda b: (b.rank, b.trial))
    return StudyDir(path, info, trials, best, notes)


# ------------------------------------------------------------------ sections


def _states(sd: StudyDir) -> dict[str, int]:
    per_trial = sd.trials.drop_duplicates("trial")
    return per_trial["state"].value_counts().to_dict()


def _top(sd: StudyDir, agg: pd.DataFrame, n: int) -> pd.DataFrame:
    ok = agg[(agg["state"] == "COMPLETE") & agg["feasible"]]
    if ok.empty:
        return ok
    rank = ok["pareto_rank"].where(ok["pareto_rank"] >= 0, 10**6)
    objs = sd.objectives
    order = ok.assign(_rank=rank)
    keys = ["_rank"]
    if objs:
        m, d = objs[0]
        order["_key"] = -order[m] if d == "maximize" else order[m]
        keys.append("_key")
    return order.sort_values(keys + ["trial"]).head(n).drop(columns=[c for c in ("_rank", "_key") if c in order])


def _design_label(row) -> str:
    return f"trial {int(row['trial'])}"


def _hue_param(sd: StudyDir, importance: pd.DataFrame | None) -> str | None:
    """The key categorical parameter: the first categorical one, else the most important, else the first."""
    cats = [p for p in sd.info.get("categorical", []) if f"param_{p}" in sd.trials]
    if cats:
        return cats[0]
    if importance is not None and len(importance):
        return str(importance.groupby("parameter")["importance"].mean().idxmax())
    params = sd.params
    return params[0] if params else None


def _multi(sd: StudyDir) -> bool:
    return len(sd.objectives) >= 2


def _label(trial) -> str:
    return f"trial {int(trial)}"


def _pareto_section(sd: StudyDir, agg: pd.DataFrame, hue: str | None, chosen: int | None) -> Section:
    from dse.report import figures

    multi = _multi(sd)
    if multi:
        sec = Section("Pareto front", "Every completed design: circles are on the study's Pareto front (rank 0), "
                      "squares are dominated; the line joins the designs no other beats on that pair of "
                      "objectives; the gold star is the chosen design.")
    else:
        sec = Section("Designs found", "Every completed design on the study's one objective against a metric it "
                      "did not optimise; the line joins the designs no other beats on both; the gold star is "
                      "the chosen design (the best value of the objective).")
    objs = sd.objectives
    done = agg[agg["state"] == "COMPLETE"]
    if multi:
        top = objs[:3]
        pairs = [(a[0], a[1], b[0], b[1]) for i, a in enumerate(top) for b in top[i + 1:]]
    elif objs:
        other = next((m for m in SECONDARY if m in done and m != objs[0][0] and done[m].notna().any()), None)
        pairs = [(other, R.OBJECTIVE_METRICS.get(other, "minimize"), objs[0][0], objs[0][1])] if other else []
    else:
        pairs = []
    if done.empty or not pairs:
        sec.notes.append("no completed trials with objective values yet")
        return sec
    pts = done.assign(front=done["pareto_rank"] == 0)
    hue_col = f"param_{hue}" if hue else None
    png = figures.pareto(pts, pairs, hue_col, hue_label=hue, chosen=chosen, multi=multi,
                         hue_unit=(sd.info.get("units") or {}).get(hue_col))
    sec.figures.append(Figure("pareto", "Pareto fronts" if multi else "", png,
                              alt=f"{len(done)} designs coloured by {hue}, the chosen one starred",
                              caption=f"Colour: parameter {hue}." if hue else "",
                              data=plot_data(_label(chosen) if chosen is not None else None,
                                             [_label(t) for t in done["trial"]])))
    return sec


def _top_table(sd: StudyDir, top: pd.DataFrame) -> Table:
    """One column per design (the chosen one first), one row per objective, metric and
    parameter, values with their units: as wide as the number of designs, never as wide as
    the number of parameters."""
    from dse.columns import human, metric_unit

    units = sd.info.get("units") or {}
    params = sd.params
    metrics = [m for m, _ in sd.objectives] + [m for m in KEY_METRICS if m not in dict(sd.objectives)]
    metrics = [m for m in metrics if m in top]
    files = {b.trial: b.yaml.name for b in sd.best}
    trials = [int(t) for t in top["trial"]]
    cols = [""] + [_label(t) + (" ★ chosen" if i == 0 else "") for i, t in enumerate(trials)]
    rows: list[list[str]] = []
    if _multi(sd):
        rows.append(["Pareto rank", *[str(int(r)) if r >= 0 else "–" for r in top["pareto_rank"]]])
    objectives = dict(sd.objectives)
    for m in metrics:
        label = _header(m).split(" [")[0] + (f" ({objectives[m]})" if m in objectives else "")
        rows.append([label, *[human(v, metric_unit(m)) for v in top[m]]])
    for p in params:
        col = f"param_{p}"
        unit = units.get(col)
        rows.append([p, *[human(v, unit) if unit is not None else fmt(v) for v in top[col]]])
    rows.append(["design file", *[f"best/{files[t]}" if t in files else "–" for t in trials]])
    return Table(cols, rows, caption="Aggregated over the study's workloads (weighted); objectives first, "
                                     "then the parameters the study searched.")


def _header(metric: str) -> str:
    from dse.report.figures import metric_label

    return metric_label(metric)


def _importance(sd: StudyDir) -> tuple[pd.DataFrame | None, str | None]:
    """Importance of each parameter per objective from Optuna's evaluators (fANOVA, PED-ANOVA)."""
    import optuna

    db = sd.path / "study.db"
    url = f"sqlite:///{db.resolve()}" if db.is_file() else sd.info.get("storage")
    if not url:
        return None, "no Optuna storage (study.db) next to the tables"
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True) if url.startswith("sqlite") else url
        names = optuna.study.get_all_study_names(storage)
        name = sd.info.get("optuna_study_name") or (names[0] if len(names) == 1 else None)
        if name not in names:
            return None, f"the storage holds no study named {name!r}"
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception as exc:  # an unreadable or locked database: the rest of the report still stands
        return None, f"could not open the Optuna storage ({type(exc).__name__}: {exc})"
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return None, "parameter importance needs at least two completed trials"
    evaluators = {"PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator()}
    try:  # fANOVA fits a random forest: scikit-learn, when it is installed
        evaluators["fANOVA"] = optuna.importance.FanovaImportanceEvaluator(seed=0)
    except ImportError:
        pass
    rows, problems = [], []
    n_values = len(complete[0].values or [])
    for i, (metric, _) in enumerate(sd.objectives[:n_values] if n_values else []):
        for ev_name, ev in evaluators.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    imp = optuna.importance.get_param_importances(
                        study, evaluator=ev, target=lambda t, i=i: t.values[i])
            except Exception as exc:
                problems.append(f"{ev_name} on {metric}: {exc}")
                continue
            rows += [{"parameter": p, "objective": metric, "evaluator": ev_name, "importance": v}
                     for p, v in imp.items()]
    if not rows:
        return None, "; ".join(problems) or "no objective values in the storage"
    return pd.DataFrame(rows), ("; ".join(problems) if problems else None)


def _importance_section(imp: pd.DataFrame | None, problem: str | None) -> Section:
    from dse.report import figures

    evaluators = sorted(set(imp["evaluator"])) if imp is not None else []
    sec = Section("Parameter importance", "How much of each objective's variation each parameter explains, "
                  f"from Optuna's {' and '.join(evaluators) or 'importance'} evaluator(s) over the completed "
                  "trials (normalised to sum to 1).")
    if problem:
        sec.notes.append(problem)
    if imp is not None:
        sec.figures.append(Figure("importance", "", figures.importance(imp),
                                  alt="parameter importance per objective and evaluator"))
    return sec


def _components(df: pd.DataFrame, sd: StudyDir) -> list[str]:
    """Energy columns of whole components, which add up to ``energy_j``.

    The engine also writes parts of a component (``energy_<tier>_background_j``,
    IMC ADC/DAC energies); the design file names the components, else a column
    whose name extends another one's is taken for a part.
    """
    from dse.spec.loader import load_architecture

    for b in sd.best:
        try:
            names = [c.name for c in load_architecture(b.yaml).components()]
        except Exception:
            continue
        return [R.energy_col(n) for n in names if R.energy_col(n) in df]
    skip = {R.ENERGY, R.ENERGY_PER_SAMPLE}
    cols = [c for c in df.columns if c.startswith("energy_") and c.endswith("_j") and c not in skip]
    names = [c[7:-2] for c in cols]
    return [c for c, n in zip(cols, names) if not any(n != m and n.startswith(m + "_") for m in names)]


def _per_workload(sd: StudyDir, top: pd.DataFrame) -> pd.DataFrame:
    per = sd.trials[(sd.trials["trial"].isin(top["trial"])) & (sd.trials["workload"] != ALL)]
    per = per[per["state"] == "COMPLETE"]
    order = {int(t): i for i, t in enumerate(top["trial"])}
    return per.assign(_o=per["trial"].map(order)).sort_values(["_o"], kind="stable").drop(columns="_o")


def _energy_section(sd: StudyDir, top: pd.DataFrame, chosen: str | None) -> Section:
    from dse.report import figures

    sec = Section("Energy per sample of the top designs", "Energy of one sample (one inference or training "
                  "step of the batch) on each workload: left, by component (dynamic energy of every action plus "
                  "its leakage or background power over the run); right, all dynamic against all static energy. "
                  "The chosen design carries a star.")
    per = _per_workload(sd, top)
    if per.empty:
        per = top
    comps = [c for c in _components(per, sd) if per[c].fillna(0).abs().sum() > 0]
    if per.empty or not comps or "samples" not in per:
        sec.notes.append("no per-component energy columns for the top designs yet")
        return sec
    samples = per["samples"].where(per["samples"] > 0)
    wide = per[["trial", "workload"]].assign(**{c: per[c] / samples for c in comps})
    long = wide.melt(id_vars=["trial", "workload"], value_vars=comps, var_name="component",
                     value_name="j_per_sample")
    long["component"] = long["component"].str.slice(7, -2)
    long["design"] = long["trial"].map(_label)
    split_cols = [c for c in ("dynamic_energy_j", "static_energy_j") if c in per]
    split = per[["trial", "workload"]].assign(**{c.split("_")[0]: per[c] / samples for c in split_cols})
    split = split.melt(id_vars=["trial", "workload"], var_name="kind", value_name="j_per_sample")
    split["design"] = split["trial"].map(_label)
    sec.figures.append(Figure("energy", "", figures.energy_per_sample(long, split, chosen),
                              alt="energy per sample by component and dynamic/static for the top designs",
                              data=plot_data(chosen, long["design"])))
    return sec


def _bytes_section(sd: StudyDir, top: pd.DataFrame, chosen: str | None) -> Section:
    from dse.report import figures

    sec = Section("Bytes moved per tier", "Off-chip bytes read and written per sample over each memory tier, "
                  "for the top designs on each workload.")
    per = _per_workload(sd, top)
    cols = [c for c in per.columns if c.startswith(("bytes_read_", "bytes_written_"))]
    if per.empty or not cols or "samples" not in per:
        sec.notes.append("no per-tier byte counts for the top designs yet")
        return sec
    samples = per["samples"].where(per["samples"] > 0)
    rows = []
    for col in cols:
        direction = "read" if col.startswith("bytes_read_") else "written"
        tier = col[len(f"bytes_{direction}_"):]
        for t, wl, v, n in zip(per["trial"], per["workload"], per[col], samples):
            if pd.notna(v) and pd.notna(n):
                rows.append({"design": _label(t), "workload": wl, "tier": tier, "direction": direction,
                             "bytes_per_sample": v / n})
    traffic = pd.DataFrame(rows)
    if traffic.empty:
        sec.notes.append("no per-tier byte counts for the top designs yet")
        return sec
    sec.figures.append(Figure("bytes", "", figures.bytes_per_tier(traffic, chosen),
                              alt="bytes per sample per tier for the top designs",
                              data=plot_data(chosen, traffic["design"])))
    return sec


def _roofs(sd: StudyDir, designs: list[BestDesign], precision: str | None) -> pd.DataFrame:
    """Peak compute and off-chip bandwidth of the best designs, read from their YAML files."""
    from dse.spec.loader import load_architecture

    rows = []
    for b in designs:
        try:
            arch = load_architecture(b.yaml)
        except Exception:
            continue
        rows.append({"design": f"trial {b.trial}", **peak_of(arch, precision)})
    return pd.DataFrame(rows, columns=["design", "peak_ops_per_s", "bandwidth_b_per_s", "precision"])


def peak_of(arch, precision: str | None) -> dict:
    """Peak op/s (2 per MAC on systolic arrays at ``precision``, else the fastest one; plus vector
    units) and total off-chip bandwidth of an architecture."""
    precs = {p for u in arch.compute for p in u.precisions}
    if precision not in precs:
        precision = max(precs, key=lambda p: sum(u.peak_ops(p) for u in arch.compute)) if precs else "any"
    # (crossbars run at the bits of the precision too: fewer bits, fewer steps)
    peak = sum(u.peak_ops(precision if u.precisions or u.kind == "imc" else None) for u in arch.compute)
    return {"peak_ops_per_s": peak, "bandwidth_b_per_s": sum(m.bandwidth for m in arch.memories),
            "precision": precision}


def _traffic(df: pd.DataFrame) -> pd.Series:
    cols = [c for c in df.columns if c.startswith(("bytes_read_", "bytes_written_"))]
    return df[cols].fillna(0).sum(axis=1) if cols else pd.Series(0.0, index=df.index)


def _read_sidecar(b: BestDesign, kind: str, first_workload: str | None) -> pd.DataFrame | None:
    path = b.sidecar(kind)
    if not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError):  # damaged (pyarrow's errors are ValueErrors): shown as absent
        return None
    if "workload" not in df:  # written before sidecars covered every workload: the first one
        df = df.assign(workload=first_workload or "the first workload")
    return df


def _sidecars(sd: StudyDir, trial: int | None) -> tuple[BestDesign | None, pd.DataFrame | None, pd.DataFrame | None]:
    """The best design ``trial`` (else the first in best/) with its per-op and timeline tables."""
    first = (sd.info.get("workloads") or [{}])[0].get("name")
    for b in sorted(sd.best, key=lambda b: b.trial != trial):
        return b, _read_sidecar(b, "ops", first), _read_sidecar(b, "timeline", first)
    return None, None, None


def _roofline_panel(sd: StudyDir, b: BestDesign, ops: pd.DataFrame, chosen: bool) -> dict | None:
    """A design's roofline from its per-op table: ideal roofs from its file, the attainable compute
    roof from the op/s its units reach while busy, one point per op and per workload."""
    precision = str(ops.groupby("precision")["macs"].sum().idxmax()) if "precision" in ops and len(ops) else None
    roofs = _roofs(sd, [b], precision)
    if roofs.empty:
        return None
    roof = roofs.iloc[0]
    traffic = _traffic(ops)
    busy = ops["compute_s"] if "compute_s" in ops else ops["latency_s"]
    compute = ops[(ops["ops"] > 0) & (busy > 0)]
    rates = compute["ops"] / busy[compute.index]
    # the roof the units reach on these op shapes: the best utilisation of any op (no op can sit
    # above it), and the average while busy (what the workload as a whole gets)
    attainable = min(float(rates.max()), float(roof["peak_ops_per_s"])) if len(rates) else float(roof["peak_ops_per_s"])
    average = min(float(compute["ops"].sum() / busy[compute.index].sum()), attainable) if len(rates) else attainable
    keep = (traffic > 0) & (ops["latency_s"] > 0) & (ops["ops"] > 0)
    pts = pd.DataFrame({"workload": ops["workload"], "intensity": ops["ops"] / traffic.where(keep),
                        "throughput": ops["ops"] / ops["latency_s"].where(keep)}).dropna()
    grouped = ops.assign(_traffic=traffic).groupby("workload", sort=False)
    runs = pd.DataFrame({"intensity": grouped["ops"].sum() / grouped["_traffic"].sum(),
                         "throughput": grouped["ops"].sum() / grouped["latency_s"].sum()}).reset_index()
    runs = runs.replace([math.inf], math.nan).dropna()
    return {"design": _label(b.trial) + (" (chosen)" if chosen else ""), "trial": b.trial, "chosen": chosen,
            "peak_ops_per_s": float(roof["peak_ops_per_s"]), "bandwidth_b_per_s": float(roof["bandwidth_b_per_s"]),
            "attainable_ops_per_s": attainable, "average_ops_per_s": average, "ops": pts, "runs": runs}


def _roofline_section(sd: StudyDir, top: pd.DataFrame, chosen: int | None) -> Section:
    from dse.report import figures

    sec = Section("Roofline of each chosen design", "One panel per top design that has per-op results (the "
                  "chosen design first): every op of every workload and each whole workload (diamonds), under "
                  "the ideal roof (peak compute, total off-chip bandwidth, from the design file) and the "
                  "attainable roof: the most operations per second its compute units reach on any of these "
                  "op shapes (array utilisation after fill, drain and partial folds); the dotted line is their "
                  "average while busy.")
    first = (sd.info.get("workloads") or [{}])[0].get("name")
    in_top = [int(t) for t in top["trial"]]
    designs = sorted([b for b in sd.best if b.trial in in_top], key=lambda b: in_top.index(b.trial))[:3]
    panels = []
    for b in designs:
        ops = _read_sidecar(b, "ops", first)
        if ops is None or ops.empty or "ops" not in ops:
            continue
        panel = _roofline_panel(sd, b, ops, b.trial == chosen)
        if panel is not None and len(panel["ops"]):
            panels.append(panel)
    if not panels:
        sec.notes.append("no per-op results of the best designs (best/*.ops.parquet): rooflines are not drawn")
        return sec
    label = _label(chosen) + " (chosen)" if chosen is not None else None
    sec.figures.append(Figure("roofline", "", figures.design_rooflines(panels),
                              alt="roofline per top design with ideal and attainable roofs",
                              data=plot_data(label, [p["design"] for p in panels])))
    return sec


def _ops_section(sd: StudyDir, best: BestDesign | None, ops: pd.DataFrame | None) -> Section:
    from dse.report import figures

    sec = Section("What bounds each op of the chosen design")
    if best is None:
        sec.notes.append("no best design files (best/*.yaml) yet")
        return sec
    sec.intro = (f"Chosen design: trial {best.trial}, on every workload of the study. Each op is bound by "
                 f"compute or by the memory tier (or SRAM port) whose transfers take longest.")
    if ops is None or ops.empty:
        sec.notes.append(f"{best.sidecar('ops').name} is missing or could not be read: the sweep did not record per-op results, "
                         f"so this figure is skipped (reports never rerun a simulation)")
        return sec
    label = _label(best.trial) + " (chosen)"
    for i, (wl, part) in enumerate(ops.groupby("workload", sort=False)):
        roofs = _roofs(sd, [best], str(part.groupby("precision")["macs"].sum().idxmax())
                       if "precision" in part else None)
        roof = roofs.iloc[0].to_dict() if len(roofs) else None
        sec.figures.append(Figure(f"op-bounds-{i}", f"{wl} on {label}", figures.op_bounds(part, roof),
                                  alt=f"share of op time by bound and per-op roofline on {wl}",
                                  data=plot_data(label, [label])))
        longest = part.sort_values("latency_s", ascending=False).head(8)
        cols = [c for c in ("op", "kind", "unit", "latency_s", "bound") if c in part]
        from dse.columns import human_column

        sec.tables.append(Table([_header(c) if c == "latency_s" else c for c in cols],
                                [[human_column(c, r[c]) for c in cols] for _, r in longest.iterrows()],
                                caption=f"{wl}: the {len(longest)} longest of {len(part)} ops"))
    return sec


def _timeline_section(best: BestDesign | None, ops: pd.DataFrame | None, tl: pd.DataFrame | None) -> Section:
    from dse.report import figures

    sec = Section("Utilisation timeline of the chosen design",
                  "When each compute resource runs which op over the study's first workload; colour is the "
                  "op's bound.")
    if best is None:
        sec.notes.append("no best design files (best/*.yaml) yet")
        return sec
    if tl is None or tl.empty:
        sec.notes.append(f"{best.sidecar('timeline').name} is missing or could not be read: the sweep did not record the timeline, "
                         f"so this figure is skipped (reports never rerun a simulation)")
        return sec
    first = tl["workload"].iloc[0]
    tl = tl[tl["workload"] == first]
    ops = ops[ops["workload"] == first] if ops is not None else None
    bounds = dict(zip(ops["op"], ops["bound"])) if ops is not None and "bound" in ops else {}
    label = _label(best.trial) + " (chosen)"
    sec.figures.append(Figure("timeline", f"{first} on {label}", figures.timeline(tl, bounds),
                              alt=f"utilisation timeline of trial {best.trial}", data=plot_data(label, [label])))
    return sec


def _scaling_section(sd: StudyDir) -> Section | None:
    """For studies of systems of many chips: the scaling curve, one line per other parameter."""
    from dse.report import figures

    df = sd.trials[(sd.trials["state"] == "COMPLETE")]
    if "chips" not in df or df["chips"].nunique() < 2 or R.THROUGHPUT_SAMPLES not in df:
        return None
    df = df.drop_duplicates("trial")
    others = [p for p in sd.params if f"param_{p}" in df and df[f"param_{p}"].nunique() > 1
              and not df[f"param_{p}"].equals(df["chips"])]
    others = [p for p in others if df.groupby(f"param_{p}")["chips"].nunique().min() > 1]
    hue = f"param_{others[0]}" if others else None
    sec = Section("Scaling", "Throughput, scaling efficiency (throughput over chips x one chip's) and energy "
                  "per step against the number of chips" + (f", one line per {others[0]}." if hue else "."))
    sec.figures.append(Figure("scaling", "", figures.scaling(df, hue),
                              alt=f"scaling curves of {len(df)} designs"))
    return sec


def _history_section(sd: StudyDir, agg: pd.DataFrame, chosen: int | None = None) -> Section:
    from dse.report import figures

    sec = Section("Objective history", "Each objective per trial, with the best feasible value found so far.")
    done = agg[agg["state"] == "COMPLETE"]
    objs = [(m, d) for m, d in sd.objectives if done[m].notna().any()] if len(done) else []
    if not objs:
        sec.notes.append("no completed trials yet")
        return sec
    sec.figures.append(Figure("history", "", figures.history(done, objs, chosen), alt="objective values per trial",
                              data=plot_data(_label(chosen) if chosen is not None else None,
                                             [_label(t) for t in done["trial"]])))
    return sec


def study_report(sd: StudyDir) -> Report:
    """The report of a study directory, as a renderer-independent Report."""
    info, agg = sd.info, sd.aggregated()
    states = _states(sd)
    objs = ", ".join(f"{d} {m}" for m, d in sd.objectives) or "–"
    wls = ", ".join(f"{w.get('name')} (weight {fmt(float(w.get('weight', 1)))})" for w in info.get("workloads", []))
    feasible = int((agg["state"].eq("COMPLETE") & agg["feasible"]).sum())
    rep = Report(title=f"Study {info.get('name') or sd.path.name}", subtitle=info.get("description") or "")
    rep.facts = [("base architecture", str(info.get("architecture", "–"))), ("objectives", objs),
                 ("workloads", wls or "–"), ("parameters", ", ".join(sd.params) or "–"),
                 ("constraints", "; ".join(info.get("constraints", [])) or "none"),
                 ("sampler", f"{info.get('sampler', '–')} (seed {info.get('seed', '–')})"),
                 ("trials", ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) +
                  f"; {feasible} feasible")]
    rep.notes += sd.notes
    if states.get("RUNNING") or states.get("WAITING"):
        rep.notes.append("the study is still running: this report shows the trials finished so far")
    if states.get("FAIL"):
        n = states["FAIL"]
        rep.notes.append(f"{n} trial{'s' if n > 1 else ''} failed or {'were' if n > 1 else 'was'} interrupted; "
                         f"left out of the figures")
    imp, problem = _importance(sd)
    hue = _hue_param(sd, imp)
    top = _top(sd, agg, max(TOP_N, 1))
    chosen = int(top["trial"].iloc[0]) if len(top) else None
    label = _label(chosen) if chosen is not None else None
    if chosen is not None:
        rep.facts.append(("chosen design", f"trial {chosen}" + (
            f" (best/{next(b.yaml.name for b in sd.best if b.trial == chosen)})"
            if any(b.trial == chosen for b in sd.best) else "")))
    best, ops, tl = _sidecars(sd, chosen)
    rep.sections.append(_pareto_section(sd, agg, hue, chosen))
    scaling = _scaling_section(sd)
    if scaling is not None:
        rep.sections.append(scaling)
    from dse.report.serving import serving_section

    serving = serving_section(agg, top, sd.params, info.get("constraints", []))
    if serving is not None:
        rep.sections.append(serving)
    top_sec = Section("Top designs")
    if top.empty:
        top_sec.notes.append("no feasible completed designs yet")
    else:
        top_sec.tables.append(_top_table(sd, top))
    rep.sections.append(top_sec)
    rep.sections.append(_importance_section(imp, problem))
    none = ["no feasible designs yet"]
    rep.sections.append(_energy_section(sd, top, label) if len(top) else
                        Section("Energy per sample of the top designs", notes=list(none)))
    rep.sections.append(_bytes_section(sd, top, label) if len(top) else
                        Section("Bytes moved per tier", notes=list(none)))
    rep.sections.append(_roofline_section(sd, top, chosen) if len(top) else
                        Section("Roofline of each chosen design", notes=list(none)))
    rep.sections.append(_ops_section(sd, best, ops))
    rep.sections.append(_timeline_section(best, ops, tl))
    rep.sections.append(_history_section(sd, agg, chosen))
    return rep


def build_report(study_dir: str | Path, out_html: str | Path | None = None) -> Path:
    """Write ``report.html`` (self-contained) and ``report.md`` (images beside it) for a study
    directory, or for a `dse compare` directory; returns the HTML path."""
    from dse.report.html import write_html
    from dse.report.markdown import write_markdown

    path = Path(study_dir)
    out = Path(out_html) if out_html is not None else path / "report.html"
    if (path / "compare.parquet").is_file() or (path / "compare.csv").is_file():
        from dse.report.compare import compare_report, read_compare

        rep = compare_report(*read_compare(path))
    else:
        rep = study_report(load_study_dir(path))
    write_html(rep, out)
    write_markdown(rep, out.with_suffix(".md"))
    return out
