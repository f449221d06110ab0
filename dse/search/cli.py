"""`dse sweep` (a study with a live progress bar; tables and best designs in --out) and
`dse compare` (one design, its memory swapped for each technology).

Heavy imports (Optuna, pandas, the engine) happen inside the command, so that
registering it keeps `dse --help` fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def sweep(
    study: str = typer.Argument(..., metavar="STUDY", help="Study YAML file or bundled name (quickstart, tpu-v1-75w, "
                                          "multiobjective)."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", "-n", min=1,
                                           help="Total trials of the study, earlier runs included "
                                                "(default: the file's)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes sharing the storage."),
    storage: Optional[str] = typer.Option(None, "--storage",
                                          help="Optuna storage URL (default: sqlite:///OUT/study.db)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: results/<study>)."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Stop this run after this long ('10 min')."),
) -> None:
    """Search architecture parameters with Optuna (resumable: run again to continue)."""
    import optuna

    from dse.search.resolve import resolve_study
    from dse.search.study import run_study, storage_url_for
    from dse.units import to_si

    # failed trials are recorded in the table; Optuna's per-trial warnings would break the bar
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from dse.console import err, out as console

    seconds = None
    if timeout is not None:
        try:
            seconds = to_si(timeout if any(c.isalpha() for c in timeout) else float(timeout), "time")
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--timeout") from None
    st = resolve_study(study)
    out_dir = out if out is not None else Path("results") / st.name
    url = storage or storage_url_for(out_dir)
    from rich.markup import escape

    from dse.errors import printable
    from dse.search.storage import masked

    def safe(text) -> str:  # names from the study file: text, never markup
        return escape(printable(str(text)))

    console.print(f"[bold]{safe(st.name)}[/]: {len(st.space.parameters)} parameters on {safe(st.base_arch.name)}, "
                  f"{safe(', '.join(w.label for w in st.workloads))} → {safe(out_dir)}/")
    console.print(f"[dim]watch it live: optuna-dashboard {safe(masked(url))}[/]", highlight=False)
    bar = _Bar(console, st)
    try:
        with bar:
            df = run_study(st, n_trials=n_trials, jobs=jobs, storage=storage, out_dir=out_dir,
                           progress=bar.update, timeout=seconds)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (dse.errors.Terminated)
        from dse.errors import Terminated

        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        err.print(f"{stopped}: completed trials are kept in {out_dir}/ (run the same command to resume)")
        raise SystemExit(143 if isinstance(exc, Terminated) else 130) from None
    _summary(console, st, df, out_dir)
    _fail_if_every_trial_failed(df)
    ran = bar.ran
    budget = n_trials or st.spec.n_trials
    if ran == 0 and budget is not None:
        console.print(f"no new trials: the study already has its {budget} (run more with --n-trials "
                      f"{2 * budget})", markup=False, highlight=False)
    more = f" --n-trials {2 * budget}" if budget else ""
    console.print(f"next: dse report {out_dir}   (HTML report of these trials); "
                  f"dse sweep {study} --out {out_dir}{more}   (continue the search)", markup=False, highlight=False)


def _fail_if_every_trial_failed(df) -> None:
    """A sweep in which no trial ran is an error (exit 2), with the first trial's reason."""
    from dse.errors import DseError
    from dse.search.tables import ALL

    agg = df[df["workload"] == ALL] if not df.empty else df
    if len(agg) and (agg["state"] == "FAIL").all():
        errors = [e for e in agg["error"] if isinstance(e, str) and e]
        reason = errors[0] if errors else "interrupted"
        raise DseError(f"every one of the {len(agg)} trials failed; the first: {reason}")


class _Bar:
    """A Rich progress bar fed by run_study's progress callback."""

    def __init__(self, console, st):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.st = st
        self.progress = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[best]}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[left]}"), console=console, transient=False)
        self.task = None
        self.start_done = 0
        self.ran = 0  # trials finished by this run

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, p) -> None:
        o = self.st.objectives[0]
        best = (f"best {o.metric} {p.best:.4g} (trial {p.best_trial})" if p.best is not None
                else "no feasible design yet")
        if p.failed:
            best += f", {p.failed} failed"
        ran = p.done - p.done_before
        self.ran = ran
        left = ""
        if p.target is not None and ran > 0:
            left = f"~{max(p.target - p.done, 0) * p.elapsed_s / ran:.0f} s left"
        if p.timeout_s is not None:
            t_left = max(p.timeout_s - p.elapsed_s, 0.0)
            left = f"{t_left:.0f} s left" if not left else f"{left} (timeout in {t_left:.0f} s)"
        if self.task is None:
            self.start_done = p.done
            self.task = self.progress.add_task("sweep", total=p.target, completed=p.done, best=best, left=left)
        else:
            self.progress.update(self.task, completed=p.done, best=best, left=left)


def _summary(console, st, df, out_dir: Path) -> None:
    from rich.table import Table

    from dse.errors import printable
    from dse.search.tables import ALL, best_trials

    agg = df[df["workload"] == ALL] if not df.empty else df
    n = len(agg)
    feasible = int(agg["feasible"].sum()) if n else 0
    failed = int((agg["state"] == "FAIL").sum()) if n else 0
    console.print(f"{n} trials: {feasible} feasible, {n - feasible - failed} infeasible, {failed} failed")
    best = best_trials(df, st, st.spec.best_designs)
    if best.empty:
        console.print("no feasible design found")
    else:
        from rich.text import Text

        from dse.columns import human
        from dse.search.tables import column_units

        units = column_units(best, st)
        table = Table(title="best designs")
        rank = ["pareto_rank"] if len(st.objectives) > 1 else []
        cols = ["trial"] + rank + [o.metric for o in st.objectives] + \
               [f"param_{p.path}" for p in st.space.parameters]
        heads = cols[:-len(st.space.parameters)] + [p.name for p in st.space.parameters]
        for c in heads:
            table.add_column(Text(printable(str(c))), justify="right")
        for _, row in best.iterrows():
            table.add_row(*(Text(printable(human(row.get(c), units.get(c)))) for c in cols))  # text, never markup
        console.print(table)
    n_best = len(list((out_dir / "best").glob("*.yaml"))) if (out_dir / "best").is_dir() else 0
    console.print(f"wrote {out_dir}/trials.parquet and trials.csv ({len(df)} rows: each trial on each workload, "
                  f"plus its weighted '__all__' row), study.json, and {n_best} best designs as ready-to-run "
                  f"YAML in {out_dir}/best/", markup=False, highlight=False)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def compare(
    arch: str = typer.Option(..., "--arch", "-a", help="Architecture YAML file or bundled name."),
    memory: str = typer.Option("ddr5,lpddr5,hbm3,optane", "--memory", "-m",
                               help="Comma-separated memory technologies: ddr4, ddr5, lpddr5, hbm3, optane, any tier "
                                    "of `dse list memories`, or reram-imc (a ReRAM crossbar tile that runs the "
                                    "layers it finishes sooner than the design's units)."),
    workload: str = typer.Option("resnet50,bert-base,gpt-decode,dlrm", "--workload", "-w",
                                 help="Comma-separated workloads (specs, or gpt-decode / gpt-prefill)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Directory for the table and report (default: results/compare-ARCH)."),
) -> None:
    """The same design with its memory swapped: every workload on every technology, a table and a report."""
    from dse import results as R
    from dse.console import out as console
    from dse.console import print_table
    from dse.search.compare import compare as run_compare

    out_dir = out if out is not None else Path("results") / f"compare-{Path(arch).stem}"
    df = run_compare(arch, _split(memory), _split(workload), out_dir)
    ok = df[df["error"].isna()]
    from dse.columns import human_column

    table = ok[["technology", "workload"]].copy()
    for col, head in ((R.THROUGHPUT_SAMPLES, "throughput"), (R.ENERGY_PER_SAMPLE, "energy/sample"),
                      (R.AVG_POWER, "power"), (R.TOPS_PER_W, "efficiency")):
        table[head] = ok[col].map(lambda v, col=col: human_column(col, v))
    table["memory % of energy"] = [f"{100 * s:.1f}" + ("" if src else " *")
                                   for s, src in zip(ok["memory_energy_share"], ok["memory_energy_sourced"])]
    print_table(table, title=f"{arch}: memory technologies")
    if not ok["memory_energy_sourced"].all():
        console.print("* the library sources no read/write energy for this technology: background power only",
                      markup=False, highlight=False)
    from dse.report.compare import imc_lines

    for line in imc_lines(ok):
        console.print(line, markup=False, highlight=False)
    for _, r in df[df["error"].notna()].iterrows():
        console.print(f"{r['technology']} x {r['workload']}: {r['error']}", markup=False, highlight=False)
    console.print(f"wrote {out_dir / 'compare.parquet'} and {out_dir / 'report.html'}", markup=False, highlight=False)
