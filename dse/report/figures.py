"""Report figures: seaborn/matplotlib charts drawn from result tables, returned as PNG bytes.

Every function takes plain DataFrames (never an architecture or a simulation) and
returns the bytes of one PNG. Axes carry SI units. Names from user YAML pass
through ``short``, which escapes ``$`` so that mathtext draws them literally.
"""
from __future__ import annotations

import io
import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # reports render off-screen; set here, never at `import dse`

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from dse import results as R  # noqa: E402

DPI = 110
#: Labels with units for the metrics of dse.results.
METRIC_LABELS = {
    R.LATENCY: "latency [s]",
    R.THROUGHPUT_OPS: "throughput [op/s]",
    R.THROUGHPUT_SAMPLES: "throughput [samples/s]",
    R.ENERGY: "energy [J]",
    R.AVG_POWER: "average power [W]",
    R.TOPS_PER_W: "efficiency [TOPS/W]",
    R.AREA: "area [mm²]",
    R.ENERGY_PER_SAMPLE: "energy per sample [J]",
    "memory_energy_share": "memory share of energy [1]",
    "memory_energy_share_pct": "memory share of energy [%]",
    "total_ops": "operations [op]",
    R.TOKENS_PER_S: "throughput [tokens/s]",
    R.REQUESTS_PER_S: "throughput [requests/s]",
    R.GOODPUT: "goodput [requests/s]",
    R.TOKENS_PER_J: "energy efficiency [tokens/J]",
    R.SLO_ATTAINMENT: "requests meeting the SLOs [1]",
}
_RC = {"axes.titlesize": 11, "axes.labelsize": 10,
       "legend.fontsize": 8.5, "legend.title_fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9,
       "figure.dpi": DPI, "savefig.dpi": DPI}


def metric_label(metric: str) -> str:
    """An axis label with its unit for a metric column name."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    if metric.startswith("energy_") and metric.endswith("_j"):
        return f"energy of {metric[7:-2]} [J]"
    if metric.startswith("busy_"):
        return f"busy fraction of {metric[5:]} [1]"
    if metric.startswith(("bytes_read_", "bytes_written_")):
        return f"{metric.replace('_', ' ')} [B]"
    for suffix, unit in (("_s", "s"), ("_j", "J"), ("_w", "W"), ("_mm2", "mm²"), ("_hz", "Hz")):
        if metric.endswith(suffix):
            return f"{metric[: -len(suffix)].replace('_', ' ')} [{unit}]"
    return metric


def short(text, n: int = 28) -> str:
    """A name for a tick label or legend: cut when long (tables keep it whole), ``$`` escaped."""
    text = str(text)
    text = text if len(text) <= n else text[: n - 1] + "…"
    return text.replace("$", r"\$")


def _esc(text: str) -> str:
    """Literal text for matplotlib (a ``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


@contextmanager
def _style() -> Iterator[None]:
    with plt.rc_context(_RC), sns.axes_style("whitegrid"):
        yield


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _si_ticks(ax, axis: str, metric: str) -> None:
    """Engineering ticks (200 µs, 1.5 kW) on a linear axis of a metric in s, J or W."""
    label = metric_label(metric)
    unit = next((u for u in ("s", "J", "W") if label.endswith(f"[{u}]")), None)
    if unit is None and label.endswith(("[samples/s]", "[op/s]")):
        unit = ""  # 8 M (the unit is in the label)
    target = ax.xaxis if axis == "x" else ax.yaxis
    if unit is not None and (ax.get_xscale() if axis == "x" else ax.get_yscale()) == "linear":
        target.set_major_formatter(EngFormatter(unit=unit))


def bound_palette(bounds) -> dict:
    """One colour per bound, the same in every figure: compute blue, memory tiers in warm colours."""
    others = sorted({b for b in bounds if b != "compute"})
    colours = dict(zip(others, sns.color_palette("Set1", 9)[0:1] + sns.color_palette("Set1", 9)[2:])) \
        if others else {}
    return {"compute": sns.color_palette("Set1", 9)[1], **colours}


def _wide_span(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return len(v) > 1 and (v > 0).all() and v.max() / v.min() > 100


def _front_2d(x: np.ndarray, y: np.ndarray, maximize_x: bool, maximize_y: bool) -> np.ndarray:
    """Indices of the points no other point beats on both axes, ordered by x."""
    sx = -x if maximize_x else x
    sy = -y if maximize_y else y
    keep = []
    for i in range(len(x)):
        dominated = np.any((sx <= sx[i]) & (sy <= sy[i]) & ((sx < sx[i]) | (sy < sy[i])))
        if not dominated:
            keep.append(i)
    keep = np.array(keep, dtype=int)
    return keep[np.argsort(x[keep])] if len(keep) else keep


_FRONT_STYLES = ("Pareto rank 0", "dominated")
_SINGLE_STYLES = ("feasible", "feasible ")


CHOSEN = dict(marker="*", s=340, facecolor="gold", edgecolor="crimson", linewidth=1.4, zorder=6)


def _mark_chosen(ax, x: float, y: float, label: str) -> None:
    """A gold star with a label on the chosen design."""
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    ax.scatter([x], [y], label=f"chosen: {_esc(label)}", **CHOSEN)
    ax.annotate(_esc(label), (x, y), xytext=(8, 8), textcoords="offset points", fontsize=8.5,
                color="crimson", fontweight="bold", zorder=7)


def pareto(points: pd.DataFrame, pairs: Sequence[tuple[str, str, str, str]], hue: str | None,
           hue_label: str | None = None, chosen: int | None = None, multi: bool = True,
           hue_unit: str | None = None) -> bytes:
    """Feasible designs on each pair of metrics, the 2-D front joined by a line.

    ``pairs``: (x metric, x direction, y metric, y direction); ``points`` has a
    boolean column ``front`` (Pareto rank 0 on all objectives) and ``feasible``.
    """
    n = len(pairs)
    with _style():
        fig, axes = plt.subplots(1, n, figsize=(5.2 * n + 1.8, 4.4), layout="constrained", squeeze=False)
        data = points.copy()
        hue_col = None
        styles = _FRONT_STYLES if multi else _SINGLE_STYLES
        data["design"] = np.where(data["front"], styles[0], styles[1]) if multi else styles[0]
        if hue is not None and hue in data:
            hue_col = short(hue_label or hue, 40)
            data[hue_col] = data[hue].map(lambda v: short(v, 24) if isinstance(v, str) else v)
        for ax, (xm, xd, ym, yd) in zip(axes[0], pairs):
            ok = data[data["feasible"]].dropna(subset=[xm, ym])
            bad = data[~data["feasible"]].dropna(subset=[xm, ym])
            if len(bad):
                ax.scatter(bad[xm], bad[ym], marker="x", color="0.6", s=22, label="infeasible", zorder=1)
            if len(ok):
                idx = _front_2d(ok[xm].to_numpy(float), ok[ym].to_numpy(float), xd == "maximize", yd == "maximize")
                front = ok.iloc[idx]
                ax.plot(front[xm], front[ym], color="0.25", lw=1.2, zorder=2,
                        label="best trade-off of this pair" if multi else "best trade-off of these two metrics")
                numeric = hue_col is not None and pd.api.types.is_numeric_dtype(ok[hue_col])
                style = dict(style="design", style_order=list(styles), markers=dict(zip(styles, ("o", "s")))) \
                    if multi else {}
                sns.scatterplot(data=ok, x=xm, y=ym, hue=hue_col, ax=ax, s=55, zorder=3, **style,
                                palette="viridis" if numeric else "tab10", edgecolor="black", linewidth=0.4)

            pick = data[data["trial"] == chosen] if chosen is not None else data.head(0)
            if len(pick):
                _mark_chosen(ax, float(pick[xm].iloc[0]), float(pick[ym].iloc[0]), f"trial {chosen}")
            for metric, setter in ((xm, ax.set_xscale), (ym, ax.set_yscale)):
                if _wide_span(data[metric]):
                    setter("log")
            _si_ticks(ax, "x", xm)
            _si_ticks(ax, "y", ym)
            ax.set_xlabel(f"{_esc(metric_label(xm))} ({'higher' if xd == 'maximize' else 'lower'} is better)")
            ax.set_ylabel(f"{_esc(metric_label(ym))} ({'higher' if yd == 'maximize' else 'lower'} is better)")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        handles, labels = axes[0][-1].get_legend_handles_labels()
        if handles:
            from dse.columns import human

            def readable(text: str) -> str:  # a numeric hue level: 541892508.93 -> 542 MHz
                try:
                    return human(float(text), hue_unit)
                except ValueError:
                    return text

            fig.legend(handles, [readable(x) for x in labels], loc="outside right upper", frameon=False)
        return _png(fig)


def history(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], chosen: int | None = None) -> bytes:
    """Each objective against trial number, with the best feasible value so far."""
    n = len(objectives)
    with _style():
        fig, axes = plt.subplots(n, 1, figsize=(8.5, 2.9 * n + 0.4), layout="constrained", squeeze=False,
                                 sharex=True)
        for ax, (metric, direction) in zip(axes[:, 0], objectives):
            d = trials.dropna(subset=[metric]).sort_values("trial")
            ok, bad = d[d["feasible"]], d[~d["feasible"]]
            ax.scatter(ok["trial"], ok[metric], s=18, color="C0", label="feasible trial", zorder=3)
            if len(bad):
                ax.scatter(bad["trial"], bad[metric], s=20, marker="x", color="0.55", label="infeasible trial")
            if len(ok):
                best = ok[metric].cummax() if direction == "maximize" else ok[metric].cummin()
                ax.step(ok["trial"], best, where="post", color="C3", lw=1.6, label="best so far")
            pick = d[d["trial"] == chosen]
            if len(pick):
                _mark_chosen(ax, float(pick["trial"].iloc[0]), float(pick[metric].iloc[0]), f"trial {chosen}")
            if _wide_span(d[metric]):
                ax.set_yscale("log")
            _si_ticks(ax, "y", metric)
            ax.set_ylabel(short(metric_label(metric), 34))
            ax.set_title(f"{_esc(metric)} ({direction})", loc="left")
            ax.legend(loc="best", frameon=True)
        axes[-1, 0].set_xlabel("trial number [1]")
        axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
        return _png(fig)


def importance(imp: pd.DataFrame) -> bytes:
    """Horizontal bars of parameter importance (columns parameter, objective, evaluator, importance)."""
    objectives = list(dict.fromkeys(imp["objective"]))
    n = len(objectives)
    n_params = imp["parameter"].nunique()
    with _style():
        fig, axes = plt.subplots(1, n, figsize=(4.6 * n + 2.2, 0.45 * n_params * imp["evaluator"].nunique() + 1.6),
                                 layout="constrained", squeeze=False, sharey=True)
        d = imp.assign(parameter=imp["parameter"].map(lambda s: short(s, 36)))
        for ax, obj in zip(axes[0], objectives):
            sns.barplot(data=d[d["objective"] == obj], x="importance", y="parameter", hue="evaluator", ax=ax,
                        palette="Set2", orient="h")
            ax.set_xlim(0, 1)
            ax.set_xlabel("normalised importance [1]")
            ax.set_ylabel("")
            ax.set_title(short(obj, 60), loc="left")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, title="evaluator", loc="outside right upper", frameon=False)
        return _png(fig)


def energy_breakdown(energy: pd.DataFrame) -> bytes:
    """Stacked bars of energy per component (columns design, workload, component, energy_j), one panel per workload."""
    workloads = list(dict.fromkeys(energy["workload"]))
    components = list(dict.fromkeys(energy["component"]))
    n = len(workloads)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    colors = dict(zip(components, sns.color_palette("tab10" if len(components) <= 10 else "tab20", len(components))))
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols + 2.2, 3.6 * rows + 0.3),
                                 layout="constrained", squeeze=False)
        for ax, wl in zip(axes.flat, workloads):
            d = energy[energy["workload"] == wl].pivot_table(index="design", columns="component", values="energy_j",
                                                            aggfunc="sum", sort=False).fillna(0.0)
            bottom = np.zeros(len(d))
            labels = [short(x, 18) for x in d.index]
            for comp in components:
                if comp in d:
                    ax.bar(labels, d[comp].to_numpy(), bottom=bottom, color=colors[comp], label=short(comp, 30),
                           edgecolor="white", linewidth=0.5)
                    bottom += d[comp].to_numpy()
            ax.yaxis.set_major_formatter(EngFormatter(unit="J"))
            ax.set_ylabel("energy per run [J]")
            ax.set_xlabel("design")
            ax.set_title(short(wl, 50), loc="left")
            ax.tick_params(axis="x", rotation=20 if len(d) > 3 else 0)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in components]
        fig.legend(handles, [short(c, 30) for c in components], title="component", loc="outside right upper",
                   frameon=False)
        return _png(fig)


def _roof_lines(ax, roofs: pd.DataFrame, x_lo: float, x_hi: float, colours: dict | None = None) -> None:
    for i, r in enumerate(roofs.itertuples(index=False)):
        xs = np.logspace(math.log10(x_lo), math.log10(x_hi), 200)
        ys = np.minimum(r.peak_ops_per_s, r.bandwidth_b_per_s * xs)
        colour = (colours or {}).get(short(r.design, 22), f"C{i}")
        ax.plot(xs, ys, color=colour, lw=1.4, ls="-" if i == 0 else "--",
                label=f"roof: {short(r.design, 22)} ({r.precision})")


def _decade_range(values: Sequence[float], ridge: Sequence[float]) -> tuple[float, float]:
    v = [x for x in [*values, *ridge] if x > 0 and math.isfinite(x)]
    lo, hi = (min(v), max(v)) if v else (0.1, 1000.0)
    return 10 ** math.floor(math.log10(lo) - 0.5), 10 ** math.ceil(math.log10(hi) + 0.5)


def roofline(points: pd.DataFrame, roofs: pd.DataFrame) -> bytes:
    """Designs x workloads on a roofline: ``points`` has design, workload, intensity, throughput;
    ``roofs`` has design, peak_ops_per_s, bandwidth_b_per_s, precision."""
    with _style():
        fig, ax = plt.subplots(figsize=(8.6, 4.8), layout="constrained")
        ridge = list(roofs["peak_ops_per_s"] / roofs["bandwidth_b_per_s"]) if len(roofs) else []
        x_lo, x_hi = _decade_range(points["intensity"], ridge)
        d = points.assign(design=points["design"].map(lambda s: short(s, 22)),
                          workload=points["workload"].map(lambda s: short(s, 22)))
        designs = list(dict.fromkeys(d["design"]))
        colours = dict(zip(designs, sns.color_palette("tab10", len(designs))))
        _roof_lines(ax, roofs, x_lo, x_hi, colours)
        sns.scatterplot(data=d, x="intensity", y="throughput", hue="design", hue_order=designs, palette=colours,
                        style="workload", s=70, ax=ax,
                        edgecolor="black", linewidth=0.4, zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_xlabel("arithmetic intensity [op/B of off-chip traffic]")
        ax.set_ylabel("attained throughput [op/s]")
        handles, labels = ax.get_legend_handles_labels()
        ax.get_legend().remove()
        fig.legend(handles, labels, loc="outside right upper", frameon=False)
        return _png(fig)


def op_bounds(ops: pd.DataFrame, roof: dict | None) -> bytes:
    """Left: op time by what bounds it; right: each op on the roofline, coloured by its bound."""
    ops = ops.assign(bound=ops["bound"].map(lambda b: short(b, 20)))
    order = list(ops.groupby("bound")["latency_s"].sum().sort_values(ascending=False).index)
    palette = bound_palette(order)
    with _style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained",
                                     gridspec_kw={"width_ratios": [1, 1.6]})
        total = ops["latency_s"].sum()
        share = ops.groupby("bound")["latency_s"].sum().reindex(order) / total * 100 if total else None
        counts = ops["bound"].value_counts().reindex(order)
        if share is not None:
            a1.barh(order, share.to_numpy(), color=[palette[b] for b in order])
            for y, (s, c) in enumerate(zip(share, counts)):
                a1.text(s + 1, y, f"{s:.0f}% ({c} ops)", va="center", fontsize=8.5)
            a1.set_xlim(0, 125)
        a1.invert_yaxis()
        a1.set_xlabel("share of summed op latency [%]")
        a1.set_ylabel("bound by")
        a1.set_title("what limits each op", loc="left")
        d = ops.copy()
        d["bytes"] = d[[c for c in d.columns if c.startswith(("bytes_read_", "bytes_written_"))]].sum(axis=1)
        d = d[(d["bytes"] > 0) & (d["latency_s"] > 0) & (d["ops"] > 0)]
        d["intensity"] = d["ops"] / d["bytes"]
        d["throughput"] = d["ops"] / d["latency_s"]
        if len(d):
            ridge = [roof["peak_ops_per_s"] / roof["bandwidth_b_per_s"]] if roof else []
            x_lo, x_hi = _decade_range(d["intensity"], ridge)
            if roof:
                _roof_lines(a2, pd.DataFrame([roof]), x_lo, x_hi, {short(roof["design"], 22): "0.35"})
            sns.scatterplot(data=d, x="intensity", y="throughput", hue="bound", hue_order=order, palette=palette,
                            ax=a2, s=28, edgecolor="black", linewidth=0.3, zorder=3)
            a2.set_xscale("log")
            a2.set_yscale("log")
            a2.set_xlim(x_lo, x_hi)
            a2.legend(loc="lower right", title="bound / roof")
        a2.set_xlabel("arithmetic intensity [op/B of off-chip traffic]")
        a2.set_ylabel("attained throughput [op/s]")
        a2.set_title("ops with off-chip traffic on the roofline", loc="left")
        return _png(fig)


def timeline(tl: pd.DataFrame, bounds: dict[str, str]) -> bytes:
    """Gantt chart of ops on each compute resource, coloured by bound, with busy fractions."""
    bounds = {o: short(b, 20) for o, b in bounds.items()}
    resources = list(dict.fromkeys(tl["resource"]))
    order = sorted(set(bounds.get(o, "unknown") for o in tl["op"]))
    palette = bound_palette(order)
    end = float(tl["end_s"].max()) if len(tl) else 0.0
    with _style():
        fig, ax = plt.subplots(figsize=(11, 0.8 * len(resources) + 1.9), layout="constrained")
        labels = []
        for y, res in enumerate(resources):
            d = tl[tl["resource"] == res]
            busy = float((d["end_s"] - d["start_s"]).sum())
            labels.append(f"{short(res, 22)}\n{busy / end * 100 if end else 0:.0f}% busy")
            for b in order:
                part = d[d["op"].map(lambda o: bounds.get(o, "unknown")) == b]
                if len(part):
                    ax.broken_barh(list(zip(part["start_s"], part["end_s"] - part["start_s"])), (y - 0.35, 0.7),
                                   facecolors=palette[b], edgecolor="white", linewidth=0.2)
        ax.set_yticks(range(len(resources)), labels)
        ax.set_ylim(len(resources) - 0.5, -0.5)
        ax.set_xlim(0, end * 1.01 if end else 1)
        ax.xaxis.set_major_formatter(EngFormatter(unit="s"))
        ax.set_xlabel("simulated time [s]")
        ax.grid(axis="y", visible=False)
        handles = [plt.Rectangle((0, 0), 1, 1, color=palette[b]) for b in order]
        ax.legend(handles, order, title="op bound by", loc="upper left",
                  bbox_to_anchor=(1.005, 1.0), frameon=False)
        return _png(fig)


def grouped_bars(df: pd.DataFrame, metrics: Sequence[str], x: str = "workload", hue: str = "technology",
                 chosen: str | None = None) -> bytes:
    """One panel per metric: bars per ``x`` grouped by ``hue`` (log axis for wide spans); the
    chosen ``hue`` value's bars are hatched and its legend entry starred."""
    n = len(metrics)
    cols = 2
    rows = math.ceil(n / cols)
    df = df.assign(**{x: df[x].map(short), hue: df[hue].map(lambda v: short(_chosen_label(str(v), chosen)))})
    mark = short(_chosen_label(str(chosen), chosen)) if chosen is not None else None
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(13, 3.7 * rows + 0.4), layout="constrained", squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            sns.barplot(data=df, x=x, y=metric, hue=hue, ax=ax, palette="tab10", edgecolor="black", linewidth=0.3)
            if mark is not None:
                order = list(dict.fromkeys(df[hue]))
                for container, name in zip(ax.containers, order):
                    if name == mark:
                        for bar in container:
                            bar.set_hatch("///")
                            bar.set_edgecolor("crimson")
                            bar.set_linewidth(1.2)
            if _wide_span(df[metric]):
                ax.set_yscale("log")
            _si_ticks(ax, "y", metric)
            ax.set_ylabel(metric_label(metric))
            ax.set_xlabel(x)
            ax.set_title(metric_label(metric).split(" [")[0], loc="left")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, title=hue, loc="outside right upper", frameon=False)
        return _png(fig)


def heatmap(df: pd.DataFrame, value: str, index: str = "technology", columns: str = "workload",
            chosen: str | None = None) -> bytes:
    """Annotated heatmap of ``value`` (technology x workload); the chosen row is outlined."""
    df = df.assign(**{index: df[index].map(lambda v: short(_chosen_label(str(v), chosen))),
                      columns: df[columns].map(short)})
    table = df.pivot_table(index=index, columns=columns, values=value, sort=False)
    wide = _wide_span(pd.Series(table.to_numpy().ravel()))
    with _style():
        fig, ax = plt.subplots(figsize=(1.9 * len(table.columns) + 3.2, 0.6 * len(table) + 1.8), layout="constrained")
        sns.heatmap(table, annot=True, fmt=".3g", cmap="viridis", ax=ax, linewidths=0.5,
                    norm=LogNorm() if wide else None,
                    cbar_kws={"label": metric_label(value) + (" (log colour scale)" if wide else "")})
        ax.set_xlabel(columns)
        ax.set_ylabel(index)
        ax.tick_params(axis="x", rotation=0)
        ax.tick_params(axis="y", rotation=0)
        if chosen is not None:
            rows = list(table.index)
            mark = short(_chosen_label(str(chosen), chosen))
            if mark in rows:
                ax.add_patch(plt.Rectangle((0, rows.index(mark)), len(table.columns), 1, fill=False,
                                           edgecolor="crimson", linewidth=2.5, zorder=5))
        return _png(fig)


def _chosen_label(label: str, chosen: str | None) -> str:
    return f"{label} ★" if chosen is not None and label == chosen else label


def energy_per_sample(energy: pd.DataFrame, split: pd.DataFrame, chosen: str | None = None) -> bytes:
    """Per workload (a row of panels): energy per sample of each design stacked by component
    (``energy``: design, workload, component, j_per_sample) and split into dynamic and static
    (``split``: design, workload, kind, j_per_sample). The chosen design's label carries a star."""
    workloads = list(dict.fromkeys(energy["workload"]))
    components = list(dict.fromkeys(energy["component"]))
    colors = dict(zip(components, sns.color_palette("tab10" if len(components) <= 10 else "tab20",
                                                    len(components))))
    kinds = {"dynamic": sns.color_palette("Set2")[0], "static": sns.color_palette("Set2")[1]}
    n = len(workloads)
    with _style():
        fig, axes = plt.subplots(n, 2, figsize=(12.5, 3.3 * n + 0.5), layout="constrained", squeeze=False,
                                 gridspec_kw={"width_ratios": [1.6, 1]})
        for row, wl in enumerate(workloads):
            for ax, frame, key, palette, title in (
                    (axes[row, 0], energy, "component", colors, "by component"),
                    (axes[row, 1], split, "kind", kinds, "dynamic and static")):
                d = frame[frame["workload"] == wl].pivot_table(index="design", columns=key, values="j_per_sample",
                                                               aggfunc="sum", sort=False).fillna(0.0)
                labels = [short(_chosen_label(x, chosen), 20) for x in d.index]
                bottom = np.zeros(len(d))
                for part in palette:
                    if part in d:
                        ax.bar(labels, d[part].to_numpy(), bottom=bottom, color=palette[part], edgecolor="white",
                               linewidth=0.5, label=short(part, 30))
                        bottom += d[part].to_numpy()
                ax.yaxis.set_major_formatter(EngFormatter(unit="J"))
                ax.set_ylabel("energy per sample [J]")
                ax.set_title(f"{short(wl, 40)}: {title}", loc="left")
                ax.tick_params(axis="x", rotation=20 if len(d) > 3 else 0)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in components]
        handles += [plt.Rectangle((0, 0), 1, 1, color=c) for c in kinds.values()]
        fig.legend(handles, [short(c, 30) for c in components] + list(kinds), loc="outside right upper",
                   frameon=False, title="energy of")
        return _png(fig)


def bytes_per_tier(traffic: pd.DataFrame, chosen: str | None = None) -> bytes:
    """Bytes each design moves per sample over each off-chip tier, read and written, one panel per
    workload (``traffic``: design, workload, tier, direction, bytes_per_sample)."""
    workloads = list(dict.fromkeys(traffic["workload"]))
    n = len(workloads)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    d = traffic.assign(design=traffic["design"].map(lambda x: short(_chosen_label(x, chosen), 20)),
                       what=traffic["tier"].map(lambda t: short(t, 16)) + " " + traffic["direction"])
    designs = list(dict.fromkeys(d["design"]))
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols + 1.8, 3.4 * rows + 0.4), layout="constrained",
                                 squeeze=False)
        for ax, wl in zip(axes.flat, workloads):
            part = d[d["workload"] == wl]
            sns.barplot(data=part, x="what", y="bytes_per_sample", hue="design", hue_order=designs, ax=ax,
                        palette="tab10", edgecolor="black", linewidth=0.3)
            ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
            ax.set_ylabel("bytes per sample [B]")
            ax.set_xlabel("")
            ax.set_title(short(wl, 50), loc="left")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, title="design", loc="outside right upper", frameon=False)
        return _png(fig)


def design_rooflines(panels: Sequence[dict]) -> bytes:
    """One roofline per design. Each panel: ``design`` (its label), ``peak_ops_per_s``,
    ``bandwidth_b_per_s``, ``attainable_ops_per_s`` (the array's roof at the utilisation its
    ops reach), ``ops`` (workload, intensity, throughput per op) and ``runs`` (one point per
    workload: intensity, throughput)."""
    n = len(panels)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols + 2.6, 4.4 * rows + 0.3), layout="constrained",
                                 squeeze=False)
        workloads = list(dict.fromkeys(w for p in panels for w in p["ops"]["workload"]))
        colours = dict(zip(workloads, sns.color_palette("tab10", max(len(workloads), 1))))
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        for ax, p in zip(axes.flat, panels):
            ops, runs = p["ops"], p["runs"]
            ridge = [p["peak_ops_per_s"] / p["bandwidth_b_per_s"]]
            x_lo, x_hi = _decade_range(list(ops["intensity"]) + list(runs["intensity"]), ridge)
            xs = np.logspace(math.log10(x_lo), math.log10(x_hi), 200)
            ax.plot(xs, np.minimum(p["peak_ops_per_s"], p["bandwidth_b_per_s"] * xs), color="0.45", ls="--", lw=1.3,
                    label="ideal roof (peak compute, off-chip bandwidth)")
            ax.plot(xs, np.minimum(p["attainable_ops_per_s"], p["bandwidth_b_per_s"] * xs), color="black", lw=1.8,
                    label="attainable roof (best array utilisation on these ops)")
            if "average_ops_per_s" in p:
                ax.plot(xs, np.minimum(p["average_ops_per_s"], p["bandwidth_b_per_s"] * xs), color="black", lw=1.0,
                        ls=":", label="average utilisation while busy")
            for wl in workloads:
                o = ops[ops["workload"] == wl]
                if len(o):
                    ax.scatter(o["intensity"], o["throughput"], s=26, color=colours[wl], alpha=0.7,
                               edgecolor="none", label=f"ops of {short(wl, 22)}", zorder=3)
                r = runs[runs["workload"] == wl]
                if len(r):
                    ax.scatter(r["intensity"], r["throughput"], s=110, marker="D", color=colours[wl],
                               edgecolor="black", linewidth=0.8, label=f"whole {short(wl, 22)}", zorder=4)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(x_lo, x_hi)
            util = p["attainable_ops_per_s"] / p["peak_ops_per_s"] if p["peak_ops_per_s"] else float("nan")
            avg = p.get("average_ops_per_s", p["attainable_ops_per_s"]) / p["peak_ops_per_s"] \
                if p["peak_ops_per_s"] else float("nan")
            ax.set_title(f"{short(p['design'], 30)}: at most {util * 100:.0f}% of peak, {avg * 100:.0f}% on average",
                         loc="left",
                         color="crimson" if p.get("chosen") else "black",
                         fontweight="bold" if p.get("chosen") else "normal")
            ax.set_xlabel("arithmetic intensity [op/B of off-chip traffic]")
            ax.set_ylabel("attained throughput [op/s]")
        handles, labels = axes[0][0].get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        for ax in list(axes.flat)[1:n]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)
        fig.legend(list(seen.values()), list(seen), loc="outside right upper", frameon=False)
        return _png(fig)


def scaling(points: pd.DataFrame, hue: str | None) -> bytes:
    """Throughput, scaling efficiency and energy per step against chip count (systems of many
    chips), one line per value of ``hue`` (e.g. the network link)."""
    panels = [(R.THROUGHPUT_SAMPLES, "throughput [samples/s]"), (R.SCALING_EFFICIENCY, "scaling efficiency [1]"),
              (R.ENERGY, "energy per step [J]")]
    panels = [(m, lab) for m, lab in panels if m in points]
    groups = list(points.groupby(hue, sort=True)) if hue else [("all", points)]
    with _style():
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), layout="constrained",
                                 squeeze=False)
        for ax, (metric, label) in zip(axes[0], panels):
            for i, (name, g) in enumerate(groups):
                g = g.sort_values("chips")
                ax.plot(g["chips"], g[metric], marker="o", color=f"C{i}", label=_esc(short(str(name), 30)))
            ax.set_xscale("log", base=2)
            if metric != R.SCALING_EFFICIENCY and _wide_span(points[metric]):
                ax.set_yscale("log")
            if metric == R.SCALING_EFFICIENCY:
                ax.set_ylim(0, 1.05)
            ax.set_xlabel("chips [1]")
            ax.set_ylabel(label)
            ax.set_title(_esc(metric), loc="left")
        if hue:
            axes[0, 0].legend(loc="best", frameon=True, title=_esc(short(hue, 30)))
        return _png(fig)


def latency_throughput(trials: pd.DataFrame, x: str, y: str, *, order: str | None = None, hue: str | None = None,
                       chosen: pd.Series | None = None, slo: float | None = None) -> bytes:
    """Serving designs as points of throughput ``x`` against latency ``y``; a line per value of
    ``hue`` through the points in the order of ``order``; the chosen design starred; the SLO dashed."""
    with _style():
        fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
        groups = trials.groupby(hue, sort=True) if hue else [(None, trials)]
        for i, (value, d) in enumerate(groups):
            d = d.sort_values(order) if order else d.sort_values(x)
            label = f"{short(hue[6:] if hue.startswith('param_') else hue)} = {short(value)}" if hue else None
            ax.plot(d[x], d[y], "-o", color=f"C{i}", ms=5, lw=1.3, label=label)
            if order:
                for _, r in d.iterrows():
                    ax.annotate(short(r[order], 8), (r[x], r[y]), textcoords="offset points", xytext=(4, 4),
                                fontsize=7.5, color=f"C{i}")
        if slo is not None:
            ax.axhline(slo, color="0.4", ls="--", lw=1.0, label=f"SLO {slo:g} s")
        if chosen is not None and not pd.isna(chosen.get(x)) and not pd.isna(chosen.get(y)):
            ax.scatter([chosen[x]], [chosen[y]], marker="*", s=260, color="C3", edgecolor="k", zorder=5,
                       label=f"chosen (trial {int(chosen['trial'])})")
        _si_ticks(ax, "y", y)
        ax.set_xlabel(metric_label(x))
        ax.set_ylabel(metric_label(y))
        if order:
            ax.set_title(f"labels: {_esc(order[6:] if order.startswith('param_') else order)}", loc="left")
        ax.legend(loc="best", frameon=True)
        return _png(fig)
