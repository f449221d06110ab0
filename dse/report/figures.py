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


def pareto(points: pd.DataFrame, pairs: Sequence[tuple[str, str, str, str]], hue: str | None,
           hue_label: str | None = None) -> bytes:
    """Feasible designs on each pair of metrics, the 2-D front joined by a line.

    ``pairs``: (x metric, x direction, y metric, y direction); ``points`` has a
    boolean column ``front`` (Pareto rank 0 on all objectives) and ``feasible``.
    """
    n = len(pairs)
    with _style():
        fig, axes = plt.subplots(1, n, figsize=(5.2 * n + 1.8, 4.4), layout="constrained", squeeze=False)
        data = points.copy()
        hue_col = None
        data["design"] = np.where(data["front"], _FRONT_STYLES[0], _FRONT_STYLES[1])
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
                ax.plot(front[xm], front[ym], color="0.25", lw=1.2, zorder=2, label="front of this pair")
                numeric = hue_col is not None and pd.api.types.is_numeric_dtype(ok[hue_col])
                sns.scatterplot(data=ok, x=xm, y=ym, hue=hue_col, style="design", style_order=_FRONT_STYLES,
                                markers=dict(zip(_FRONT_STYLES, ("o", "s"))), ax=ax, s=55, zorder=3,
                                palette="viridis" if numeric else "tab10", edgecolor="black", linewidth=0.4)
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
            fig.legend(handles, labels, loc="outside right upper", frameon=False)
        return _png(fig)


def history(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> bytes:
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


def grouped_bars(df: pd.DataFrame, metrics: Sequence[str], x: str = "workload", hue: str = "technology") -> bytes:
    """One panel per metric: bars per ``x`` grouped by ``hue`` (log axis for wide spans)."""
    n = len(metrics)
    cols = 2
    rows = math.ceil(n / cols)
    df = df.assign(**{x: df[x].map(short), hue: df[hue].map(short)})
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(13, 3.7 * rows + 0.4), layout="constrained", squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            sns.barplot(data=df, x=x, y=metric, hue=hue, ax=ax, palette="tab10", edgecolor="black", linewidth=0.3)
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


def heatmap(df: pd.DataFrame, value: str, index: str = "technology", columns: str = "workload") -> bytes:
    """Annotated heatmap of ``value`` (technology x workload)."""
    df = df.assign(**{index: df[index].map(short), columns: df[columns].map(short)})
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
        return _png(fig)
