"""The screen of a system study: one training step on many chips, estimated analytically for
many candidate designs at once (numpy), from dse.system's own cost pieces.

Candidates that build the same system apart from its link fields (chip counts, parallelism,
topology: the *structure*) share one estimate of per-chip compute and one set of collective
phases; link fields (a preset, bandwidth, latency, energy per bit, static power, lanes) are
arrays over the candidates. For a structure:

- per-chip compute: the chip's share of the step (``split_model``: the stage's sharded ops,
  ``training_workload``: forward, backward, Adam over the optimizer shard) estimated op by op
  by the one-chip screen's roofline (dse.search.screen), one op after another;
- blocking collectives (tensor-parallel all-reduces, ZeRO-3 weight gathers) at their
  alpha-beta time (``dse.system.collectives.phases`` over the group's axes of
  ``dse.system.topology``): steps x latency + bytes / bandwidth;
- data-parallel gradients: buckets of ``parallelism.bucket`` bytes flushed as the last
  micro-batch's backward produces them; each bucket's phases queue on its axes' links (one
  transfer at a time per axis, each after its start-up latencies), so the sync ends no
  sooner than the last bucket's alpha-beta time after the backward pass, and no sooner than
  all buckets' bytes over the links; then the optimizer and (ZeRO >= 1) the all-gather of
  the updated weights;
- energy: the chips' dynamic energy of their ops, the links' bytes (charged as
  ``dse.system.comm.Communicator.charge`` charges them) x energy per bit, static power of
  chips, links and switches over the step; area: the chips' areas summed.

A step is never estimated faster than its compute roofline plus the alpha-beta time of the
collectives it must wait for. Pipeline and expert parallelism are not estimated (a SpecError
says so). Contention between concurrent collectives of different groups, a blocking switch's
shared bandwidth and compute overlapping with blocking collectives are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from dse import results as R
from dse.errors import DesignError, DseError
from dse.search.expressions import evaluate_arrays
from dse.search.objective import build_architecture
from dse.search.screen import Roofline, feasible
from dse.search.screen_errors import unscreenable
from dse.system.collectives import phases
from dse.system.comm import Communicator
from dse.system.parallelism import ATTENTION_CORE, split_model, suffix, weight_params
from dse.system.simulate import step_flops
from dse.system.spec import LinkSpec, ParallelismSpec
from dse.system.topology import Topology
from dse.workloads.ops import PRECISION_BYTES, Workload
from dse.workloads.training import training_workload

if TYPE_CHECKING:
    from dse.search.resolve import Study

SYSTEM_CAPACITY = "capacity_margin_bytes"
#: Metrics the system screen estimates.
SCREENED = (R.LATENCY, R.STEP_TIME, R.ENERGY, R.AVG_POWER, R.TOPS_PER_W, R.THROUGHPUT_OPS,
            R.THROUGHPUT_SAMPLES, R.AREA, R.ENERGY_PER_SAMPLE, R.COMM_ENERGY, SYSTEM_CAPACITY)
_LINK_FIELDS = ("bandwidth", "latency", "energy_per_bit", "static_power", "lanes", "preset")


@dataclass
class _Chip:
    """One chip's share of one micro-batch (seconds, joules), from the one-chip roofline."""

    fwd_s: float
    bwd_s: float                       # backward ops, recomputation included
    opt_s: float
    fwd_j: float
    bwd_j: float
    opt_j: float
    static_w: float
    #: (seconds into the backward ops, gradient bytes) of each gradient, in the order produced
    grads: list[tuple[float, float]] = field(default_factory=list)


def chip_share(arch, ops, optimizer_shards: int, recompute: str) -> _Chip:
    """Roofline estimate of a stage's training step on one chip (``dse.system.roles.profile``'s
    split into forward, backward and optimizer, without simulating)."""
    wl = training_workload(Workload("stage", list(ops), samples=1, params={}))
    params = sum(weight_params(o) for o in ops)
    adam = max(1, int(params) // optimizer_shards)
    wl = replace(wl, ops=[replace(o, elements=adam) if o.name == "optimizer.adam" else o for o in wl.ops])
    d = Roofline(arch)
    fwd_names = {o.name for o in ops}
    chip = _Chip(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, d.static_power_w)
    core_s = core_j = 0.0
    cache: dict[tuple, tuple[float, float]] = {}
    for o in wl.ops:
        t_ = o.tensor_bytes()
        key = (o.kind, o.gemm(), o.precision, o.vector_ops, o.pattern,
               tuple((k, v["role"], v["bytes"]) for k, v in t_.items()), tuple(sorted(o.on_chip)))
        if key not in cache:
            cache[key] = d.op(o)
        t, e = cache[key]
        if o.name == "optimizer.adam":
            chip.opt_s += t
            chip.opt_j += e
        elif o.name in fwd_names:
            chip.fwd_s += t
            chip.fwd_j += e
            if suffix(o.name) in ATTENTION_CORE:
                core_s, core_j = core_s + t, core_j + e
        else:
            chip.bwd_s += t
            chip.bwd_j += e
            if o.out_role == "gradients":
                chip.grads.append((chip.bwd_s, t_["out"]["bytes"]))
    rec = {"full": (chip.fwd_s, chip.fwd_j), "selective": (core_s, core_j)}.get(recompute, (0.0, 0.0))
    chip.grads = [(t + rec[0], b) for t, b in chip.grads]   # recomputation runs first
    chip.bwd_s += rec[0]
    chip.bwd_j += rec[1]
    return chip


class _Links:
    """Each link type's fields as arrays over candidates: the base system's link, its preset
    replaced where the study searches it, numeric fields where searched or derived."""

    def __init__(self, base_raw: dict, fields: dict[str, np.ndarray], n: int):
        self.n = n
        raw = base_raw.get("links", {}) or {}
        self.values: dict[str, dict[str, np.ndarray]] = {}
        for name, written in raw.items():
            written = dict(written)
            out = {k: np.zeros(n) for k in ("bandwidth_bps", "latency_s", "energy_per_bit_j", "static_w")}
            presets = fields.get(f"links.{name}.preset")
            choices = np.unique(presets.astype(str)) if presets is not None else [written.get("preset")]
            for preset in choices:
                sel = np.ones(n, dtype=bool) if presets is None else presets.astype(str) == preset
                spec = LinkSpec.model_validate({**written, "preset": preset} if preset is not None else written)

                def get(attr: str) -> np.ndarray:
                    v = fields.get(f"links.{name}.{attr}")
                    return np.asarray(v, dtype=float)[sel] if v is not None else \
                        np.full(int(sel.sum()), float(getattr(spec, attr)))

                lanes = get("lanes")
                out["bandwidth_bps"][sel] = get("bandwidth") * lanes
                out["latency_s"][sel] = get("latency")
                out["energy_per_bit_j"][sel] = get("energy_per_bit")
                out["static_w"][sel] = get("static_power") * lanes
            self.values[name] = out

    def at(self, sel: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        return {name: {k: v[sel] for k, v in f.items()} for name, f in self.values.items()}


class _Axes:
    """A group's axes with their bandwidth and latency as arrays over the candidates of one
    structure (the topology's own axes; a step's latency as a linear function of the link
    latencies, read off the topology by moving each link's latency)."""

    def __init__(self, topo: Topology, size: int, stride: int, links: dict[str, dict[str, np.ndarray]]):
        self.axes = topo.axes(size, stride, 0)
        base = [a.latency_s for a in self.axes]
        self.latency = [np.full(len(next(iter(links.values()))["latency_s"]), b) for b in base]
        for name, ln in topo.links.items():
            moved = topo.spec.model_copy(update={"links": {**topo.links, name: ln.model_copy(
                update={"latency": ln.latency + 1e-3})}})
            for i, a in enumerate(Topology(moved).axes(size, stride, 0)):
                coef = (a.latency_s - base[i]) / 1e-3
                if coef:
                    self.latency[i] = self.latency[i] + coef * (links[name]["latency_s"] - ln.latency)
        self.bandwidth = []
        for a in self.axes:
            bw = np.full_like(self.latency[0], np.inf)
            for h in a.hops:
                if h.shared:
                    continue   # a switch: its latency and energy count, a nonblocking one never limits
                for name, _share in h.types():
                    bw = np.minimum(bw, links[name]["bandwidth_bps"] / h.weight)
            self.bandwidth.append(bw)

    def alpha_beta_s(self, kind: str, nbytes: float, algorithm: str, switched: bool) -> np.ndarray:
        """``dse.system.collectives.alpha_beta_s`` over arrays of link values."""
        t = np.zeros_like(self.latency[0])
        for p in phases(kind, nbytes, self.axes, algorithm, switched):
            alpha, beta = self.phase_s(p)
            t = t + alpha + beta
        return t

    def phase_s(self, p) -> tuple[np.ndarray, np.ndarray]:
        """A phase's start-up and transfer time (``Phase.time_s`` over arrays): the slowest
        part's latency (a chained route adds its axes'), the slowest part's bandwidth."""
        lat = [self.latency[i] for i, _ in p.shares()]
        alpha = p.steps * (sum(lat) if p.chained else np.maximum.reduce(lat))
        return alpha, p.bytes / np.minimum.reduce([self.bandwidth[i] for i, _ in p.shares()])


class SystemScreen:
    """The analytic evaluator of a resolved system study."""

    def __init__(self, st: "Study"):
        self.st = st
        self.unscreenable = unscreenable
        for w in st.workloads:
            if not isinstance(w.workload, Workload):
                raise unscreenable(st, "a system study's workloads are models trained a step at a time, "
                                       "not serving runs")
        self.link_paths = [p.path for p in st.space.parameters if p.path.startswith("links.")] + \
            [d.path for d in st.space.derived if d.path.startswith("links.")]
        for path in self.link_paths:
            parts = path.split(".")
            if len(parts) != 3 or parts[2] not in _LINK_FIELDS:
                raise unscreenable(st, f"parameter '{path}' is not a link's {', '.join(_LINK_FIELDS)}, "
                                       f"which the screen needs")
        self._structures: dict[tuple, Any] = {}

    def _fields(self, values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        out = dict(values)
        scope: dict[str, Any] = {}
        for p in self.st.space.parameters:
            scope[p.path] = scope[p.name] = values[p.path]
        for d in self.st.space.derived:
            v = np.broadcast_to(np.asarray(evaluate_arrays(d.expr, scope)), (n,))
            out[d.path] = v
            scope[d.path] = scope[d.name] = v
        return out

    def evaluate(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Aggregated metrics (SCREENED), ``constraint_<i>`` and ``feasible`` per candidate."""
        n = len(next(iter(values.values())))
        f = self._fields(values, n)
        links = _Links(self.st.base_raw, f, n)
        structural = [k for k in f if k not in self.link_paths]
        keys = [tuple(_plain(f[k][i]) for k in structural) for i in range(n)] if structural else [()] * n
        groups: dict[tuple, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        out = {m: np.full(n, np.nan) for m in SCREENED}
        out.update({f"constraint_{i}": np.full(n, np.nan) for i in range(len(self.st.constraints))})
        for key, idx in groups.items():
            sel = np.array(idx)
            overrides = dict(zip(structural, key))
            first = {p: _plain(f[p][idx[0]]) for p in self.link_paths}
            part = self._structure(overrides, first, links.at(sel), len(sel))
            for k, v in part.items():
                out[k][sel] = v
        cons = [out[f"constraint_{i}"] for i in range(len(self.st.constraints))]
        out["feasible"] = feasible(cons, n)
        return out

    def _structure(self, overrides: dict, link_values: dict, links: dict, n: int) -> dict[str, np.ndarray]:
        from dse.system.study import capacity_margin

        try:
            system = build_architecture(self.st.base_raw, {**overrides, **link_values})
        except (DseError, ValueError):
            return {}   # an invalid design: left NaN, ranked last
        par = system.spec.parallelism or ParallelismSpec(data=system.chips)
        if par.pipeline > 1 or par.expert > 1:
            raise self.unscreenable(self.st, f"pipeline ({par.pipeline}) or expert ({par.expert}) "
                                             f"parallelism, which the system screen does not estimate")
        rows = []
        for w in self.st.workloads:
            try:
                row = self._step(system, par, w.workload, links, n)
            except DesignError:
                return {}
            row[SYSTEM_CAPACITY] = np.full(n, capacity_margin(system, w.workload))
            rows.append(row)
        weights = np.array([w.weight for w in self.st.workloads], dtype=float)
        weights = weights / weights.sum()
        t = sum(w * r[R.LATENCY] for w, r in zip(weights, rows))
        e = sum(w * r[R.ENERGY] for w, r in zip(weights, rows))
        ops = sum(w * r["total_ops"] for w, r in zip(weights, rows))
        samples = sum(w * r["samples"] for w, r in zip(weights, rows))
        agg = {R.LATENCY: t, R.STEP_TIME: t, R.ENERGY: e, R.AVG_POWER: e / t, R.TOPS_PER_W: ops / e / 1e12,
               R.THROUGHPUT_OPS: ops / t, R.THROUGHPUT_SAMPLES: samples / t, R.ENERGY_PER_SAMPLE: e / samples,
               R.AREA: rows[0][R.AREA], R.COMM_ENERGY: sum(w * r[R.COMM_ENERGY] for w, r in zip(weights, rows)),
               SYSTEM_CAPACITY: np.max([r[SYSTEM_CAPACITY] for r in rows], axis=0)}
        out = dict(agg)
        for i, c in enumerate(self.st.constraints):
            metric = SYSTEM_CAPACITY if c.metric is None else c.metric
            if metric not in agg:
                continue   # unknown to the screen: left NaN (counts as met)
            vals = [(r.get(metric, agg[metric]) - c.bound) if c.op == "<=" else (c.bound - r.get(metric, agg[metric]))
                    for r in rows] if c.metric is not None else [agg[metric]]
            out[f"constraint_{i}"] = np.max(vals, axis=0)
        return out

    def _step(self, system, par: ParallelismSpec, wl: Workload, links: dict, n: int) -> dict[str, np.ndarray]:
        """One training step of ``wl`` on every candidate of one structure."""
        from dse.system.simulate import _load_workload

        wl = _load_workload(wl)
        tp, dp, m = par.tensor, par.data, par.micro_batches
        stage = split_model(wl, par)[0][0]
        eb = PRECISION_BYTES[wl.ops[0].precision if wl.ops else "bf16"]
        shards = dp if par.zero >= 1 else 1
        shares = []
        for arch in {a.name: a for a in system.archs}.values():
            key = (arch.name, stage.signature(), shards, par.recompute)
            if key not in self._structures:
                self._structures[key] = chip_share(arch, stage.ops, shards, par.recompute)
            shares.append(self._structures[key])
        # the chips meet at every collective: the slowest design sets the pace (as simulated)
        chip = max(shares, key=lambda c: c.fwd_s + c.bwd_s + c.opt_s)
        topo = system.topology
        switched = topo.kind in ("switched", "two_level")
        # blocking collectives of one micro-batch: tensor-parallel all-reduces, ZeRO-3 gathers
        tp_ax = _Axes(topo, tp, 1, links) if tp > 1 else None
        dp_ax = _Axes(topo, dp, tp, links) if dp > 1 else None
        zero = np.zeros(n)
        tp_f = sum((tp_ax.alpha_beta_s("all_reduce", b, "auto", switched) for b in stage.tp_forward.values()),
                   zero) if tp_ax else zero
        tp_b = sum((tp_ax.alpha_beta_s("all_reduce", b, "auto", switched) for b in stage.tp_backward.values()),
                   zero) if tp_ax else zero
        weights_b = stage.params * eb
        z3 = dp_ax.alpha_beta_s("all_gather", weights_b, par.algorithm, switched) \
            if dp_ax and par.zero >= 3 else zero
        fwd = chip.fwd_s + tp_f + z3
        bwd = chip.bwd_s + tp_b + z3
        fb = m * (fwd + bwd)
        end = fb
        # data-parallel gradients of the last micro-batch's backward, in buckets
        coll = "reduce_scatter" if par.zero >= 1 else "all_reduce"
        buckets: list[tuple[float, float]] = []
        acc = 0.0
        for t_ready, b in chip.grads:
            acc += b
            if par.overlap and acc >= par.bucket:
                buckets.append((t_ready, acc))
                acc = 0.0
        if acc > 0:
            buckets.append((chip.bwd_s, acc))
        if dp_ax is not None:
            last_b = fb - bwd + z3   # the last backward's ops start
            stretch = np.where(chip.bwd_s > 0, (bwd - z3) / max(chip.bwd_s, 1e-300), 1.0)
            free = [np.zeros(n) for _ in dp_ax.axes]
            for t_ready, b in buckets:
                done = last_b + t_ready * stretch
                for p in phases(coll, b, dp_ax.axes, par.algorithm, switched):
                    alpha, beta = dp_ax.phase_s(p)
                    start = np.maximum(done + alpha, free[p.axis])
                    done = start + beta
                    free[p.axis] = done
                end = np.maximum(end, done)
        step = end + chip.opt_s
        if dp_ax is not None and par.zero >= 1:
            step = step + dp_ax.alpha_beta_s("all_gather", weights_b, par.algorithm, switched)
        # energy: the chips' ops, the links' bytes, static power over the step
        chips = system.chips
        chip_j = chips * (m * (chip.fwd_j + chip.bwd_j) + chip.opt_j) + chips * chip.static_w * step
        comm = Communicator(simpy.Environment(), topo, full=False, algorithm=par.algorithm)
        charges = []
        if tp_ax:
            for b in [*stage.tp_forward.values(), *stage.tp_backward.values()]:
                charges.append(("all_reduce", b, tp_ax.axes, "auto", m))
        if dp_ax:
            charges += [(coll, b, dp_ax.axes, par.algorithm, 1) for _, b in buckets]
            if par.zero >= 3:
                charges.append(("all_gather", weights_b, dp_ax.axes, par.algorithm, 2 * m))
            if par.zero >= 1:
                charges.append(("all_gather", weights_b, dp_ax.axes, par.algorithm, 1))
        for kind, b, axes, algo, count in charges:
            for ph in phases(kind, b, axes, algo, switched):
                comm.charge(ph, axes, chips * count)
        led = comm.ledger
        comm_j = np.full(n, led.energy_j - sum(led.energy_by_type.get(k, 0.0) for k in topo.links))
        static_w = np.full(n, sum(sw.static_power * k for sw, k in topo.switches().values()))
        for name, count in topo.inventory().items():
            static_w = static_w + count * links[name]["static_w"]
        for name in topo.links:
            comm_j = comm_j + led.bytes_by_type.get(name, 0.0) * 8.0 * links[name]["energy_per_bit_j"]
        comm_j = comm_j + static_w * step
        samples = wl.samples * m * dp
        return {R.LATENCY: step, R.ENERGY: chip_j + comm_j, R.COMM_ENERGY: comm_j,
                "total_ops": step_flops(wl, m, dp), "samples": samples,
                R.AREA: np.full(n, sum(a.area_mm2 * g.count for a, g in zip(system.archs, system.spec.chips)))}


def _plain(v) -> Any:
    return v.item() if hasattr(v, "item") else v


__all__ = ["SystemScreen", "chip_share", "SCREENED"]
