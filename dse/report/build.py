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
from dse.report.model import Figure, Report, Section, Table, fmt

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
    if (path / "study.json").is_file():
        info = json.loads((path / "study.json").read_text(encoding="utf-8"))
    else:
        notes.append("study.json is missing: objectives and parameter names are guessed from the table")
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


def _pareto_section(sd: StudyDir, agg: pd.DataFrame, hue: str | None) -> Section:
    from dse.report import figures

    sec = Section("Pareto front", "Every completed design: circles are on the study's Pareto front (rank 0), "
                  "squares are dominated; the line joins the designs no other beats on that pair of metrics.")
    objs = sd.objectives
    done = agg[agg["state"] == "COMPLETE"]
    if len(objs) >= 2:
        top = objs[:3]
        pairs = [(a[0], a[1], b[0], b[1]) for i, a in enumerate(top) for b in top[i + 1:]]
    elif objs:
        other = next((m for m in SECONDARY if m in done and m != objs[0][0] and done[m].notna().any()), None)
        pairs = [(other, R.OBJECTIVE_METRICS.get(other, "minimize"), objs[0][0], objs[0][1])] if other else []
        if other:
            sec.notes.append(f"one objective: drawn against {other}, which the study did not optimise")
    else:
        pairs = []
    if done.empty or not pairs:
        sec.notes.append("no completed trials with objective values yet")
        return sec
    pts = done.assign(front=done["pareto_rank"] == 0)
    hue_col = f"param_{hue}" if hue else None
    png = figures.pareto(pts, pairs, hue_col, hue_label=hue)
    sec.figures.append(Figure("pareto", "Pareto fronts", png, alt=f"Pareto fronts of {len(done)} designs coloured by {hue}",
                              caption=f"Colour: parameter {hue}." if hue else ""))
    return sec


def _top_table(sd: StudyDir, top: pd.DataFrame) -> Table:
    params = sd.params
    metrics = [m for m, _ in sd.objectives] + [m for m in KEY_METRICS if m not in dict(sd.objectives)]
    metrics = [m for m in metrics if m in top]
    files = {b.trial: b.yaml.name for b in sd.best}
    cols = ["trial", "Pareto rank", *params, *[_header(m) for m in metrics], "design file"]
    rows = []
    for _, r in top.iterrows():
        rows.append([str(int(r["trial"])), str(int(r["pareto_rank"])) if r["pareto_rank"] >= 0 else "–",
                     *[fmt(r[f"param_{p}"]) for p in params], *[fmt(r[m]) for m in metrics],
                     f"best/{files[int(r['trial'])]}" if int(r["trial"]) in files else "–"])
    return Table(cols, rows, caption="Aggregated over the study's workloads (weighted); objectives first.")


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


def _energy_section(sd: StudyDir, top: pd.DataFrame) -> Section:
    from dse.report import figures

    sec = Section("Energy breakdown of the top designs", "Energy of one run of each workload, split by "
                  "component (dynamic energy of every action plus leakage and background power over the run).")
    per = sd.trials[(sd.trials["trial"].isin(top["trial"])) & (sd.trials["workload"] != ALL)]
    if per.empty:
        per = top
    comps = [c for c in _components(per, sd) if per[c].fillna(0).abs().sum() > 0]
    if per.empty or not comps:
        sec.notes.append("no per-component energy columns for the top designs yet")
        return sec
    long = per[["trial", "workload", *comps]].melt(id_vars=["trial", "workload"], value_vars=comps,
                                                  var_name="component", value_name="energy_j")
    long["component"] = long["component"].str.slice(7, -2)
    order = {t: i for i, t in enumerate(top["trial"])}
    long = long.sort_values(["workload", "trial"], key=lambda s: s.map(order) if s.name == "trial" else s,
                            kind="stable")
    long["design"] = "trial " + long["trial"].astype(int).astype(str)
    sec.figures.append(Figure("energy", "", figures.energy_breakdown(long),
                              alt="stacked energy per component for the top designs"))
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
    peak = sum(u.peak_ops(precision if u.precisions else None) for u in arch.compute)
    return {"peak_ops_per_s": peak, "bandwidth_b_per_s": sum(m.bandwidth for m in arch.memories),
            "precision": precision}


def _traffic(df: pd.DataFrame) -> pd.Series:
    cols = [c for c in df.columns if c.startswith(("bytes_read_", "bytes_written_"))]
    return df[cols].fillna(0).sum(axis=1) if cols else pd.Series(0.0, index=df.index)


def _sidecars(sd: StudyDir) -> tuple[BestDesign | None, pd.DataFrame | None, pd.DataFrame | None]:
    for b in sd.best:
        ops = pd.read_parquet(b.sidecar("ops")) if b.sidecar("ops").is_file() else None
        tl = pd.read_parquet(b.sidecar("timeline")) if b.sidecar("timeline").is_file() else None
        return b, ops, tl
    return None, None, None


def _roofline_section(sd: StudyDir, top: pd.DataFrame, best_ops: pd.DataFrame | None) -> Section:
    from dse.report import figures

    sec = Section("Roofline", "Each top design on each workload: operations per byte of off-chip traffic "
                  "against attained operations per second; lines are the roofs of the best designs "
                  "(peak compute, total off-chip bandwidth) read from their design files.")
    per = sd.trials[(sd.trials["trial"].isin(top["trial"])) & (sd.trials["workload"] != ALL)]
    per = per[per["state"] == "COMPLETE"]
    if per.empty or "total_ops" not in per or R.THROUGHPUT_OPS not in per:
        sec.notes.append("no completed per-workload rows with operation counts yet")
        return sec
    traffic = _traffic(per)
    pts = pd.DataFrame({"design": "trial " + per["trial"].astype(int).astype(str), "workload": per["workload"],
                        "intensity": per["total_ops"] / traffic, "throughput": per[R.THROUGHPUT_OPS]})
    on_chip = pts["intensity"].isin([math.inf]) | traffic.eq(0).to_numpy()
    if on_chip.any():
        sec.notes.append(f"{int(on_chip.sum())} design/workload pairs have no off-chip traffic and are not drawn")
    pts = pts[~on_chip].dropna()
    precision = None
    if best_ops is not None and "precision" in best_ops and len(best_ops):
        precision = str(best_ops.groupby("precision")["macs"].sum().idxmax())
    in_top = set(top["trial"].astype(int))
    roofs = _roofs(sd, [b for b in sd.best if b.trial in in_top][:3], precision)
    if roofs.empty:
        sec.notes.append("no design files in best/: roofs are not drawn")
    if pts.empty:
        return sec
    sec.figures.append(Figure("roofline", "", figures.roofline(pts, roofs),
                              alt="roofline with each top design and workload"))
    return sec


def _ops_section(sd: StudyDir, best: BestDesign | None, ops: pd.DataFrame | None) -> Section:
    from dse.report import figures

    sec = Section("What bounds each op of the best design")
    if best is None:
        sec.notes.append("no best design files (best/*.yaml) yet")
        return sec
    wl = (sd.info.get("workloads") or [{}])[0].get("name", "the first workload")
    sec.intro = (f"Best design: trial {best.trial} (Pareto rank {best.rank}), on {wl}. Each op is bound by "
                 f"compute or by the memory tier whose transfers take longest.")
    if ops is None or ops.empty:
        sec.notes.append(f"{best.sidecar('ops').name} is missing: the sweep did not record per-op results, "
                         f"so this figure is skipped (reports never rerun a simulation)")
        return sec
    roofs = _roofs(sd, [best], str(ops.groupby("precision")["macs"].sum().idxmax()) if "precision" in ops else None)
    roof = roofs.iloc[0].to_dict() if len(roofs) else None
    sec.figures.append(Figure("op-bounds", "", figures.op_bounds(ops, roof),
                              alt="share of op time by bound and per-op roofline"))
    longest = ops.sort_values("latency_s", ascending=False).head(12)
    cols = [c for c in ("op", "kind", "unit", "precision", "latency_s", "n_tiles", "bound") if c in ops]
    sec.tables.append(Table([_header(c) if c == "latency_s" else c for c in cols],
                            [[fmt(r[c]) for c in cols] for _, r in longest.iterrows()],
                            caption=f"The {len(longest)} longest of {len(ops)} ops"))
    return sec


def _timeline_section(best: BestDesign | None, ops: pd.DataFrame | None, tl: pd.DataFrame | None) -> Section:
    from dse.report import figures

    sec = Section("Utilisation timeline of the best design",
                  "When each compute resource runs which op over the simulated workload; colour is the op's bound.")
    if best is None:
        sec.notes.append("no best design files (best/*.yaml) yet")
        return sec
    if tl is None or tl.empty:
        sec.notes.append(f"{best.sidecar('timeline').name} is missing: the sweep did not record the timeline, "
                         f"so this figure is skipped (reports never rerun a simulation)")
        return sec
    bounds = dict(zip(ops["op"], ops["bound"])) if ops is not None and "bound" in ops else {}
    sec.figures.append(Figure("timeline", "", figures.timeline(tl, bounds),
                              alt=f"utilisation timeline of trial {best.trial}"))
    return sec


def _history_section(sd: StudyDir, agg: pd.DataFrame) -> Section:
    from dse.report import figures

    sec = Section("Objective history", "Each objective per trial, with the best feasible value found so far.")
    done = agg[agg["state"] == "COMPLETE"]
    objs = [(m, d) for m, d in sd.objectives if done[m].notna().any()] if len(done) else []
    if not objs:
        sec.notes.append("no completed trials yet")
        return sec
    sec.figures.append(Figure("history", "", figures.history(done, objs), alt="objective values per trial"))
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
    best, ops, tl = _sidecars(sd)
    rep.sections.append(_pareto_section(sd, agg, hue))
    top_sec = Section("Top designs")
    if top.empty:
        top_sec.notes.append("no feasible completed designs yet")
    else:
        top_sec.tables.append(_top_table(sd, top))
    rep.sections.append(top_sec)
    rep.sections.append(_importance_section(imp, problem))
    rep.sections.append(_energy_section(sd, top) if len(top) else Section("Energy breakdown of the top designs",
                                                                          notes=["no feasible designs yet"]))
    rep.sections.append(_roofline_section(sd, top, ops) if len(top) else Section("Roofline", notes=["no feasible designs yet"]))
    rep.sections.append(_ops_section(sd, best, ops))
    rep.sections.append(_timeline_section(best, ops, tl))
    rep.sections.append(_history_section(sd, agg))
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
