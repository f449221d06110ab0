"""Screening: an analytic evaluator of many candidate designs at once (numpy), so that a
study simulates only the designs it ranks best (the ``screen:`` key of a study file).

For each op of each workload and every candidate design, with the op on the unit the
engine would choose and its operands where the engine's placement rule puts them:

    compute_s = SCALE-Sim's cycles of the fastest dataflow / clock   (systolic arrays)
              = vector ops / (lanes x count x ops per lane-cycle x clock)   (vector units)
    sram_s    = bytes through each SRAM (the array's operand reads per dataflow, the output,
                staging of off-chip operands) / its bandwidth
    tier_s    = compulsory bytes (each off-chip operand moved once) / the tier's bandwidth
                (its peak, times the share a sequential stream gets in the tier's model:
                a DRAM is unavailable while it refreshes)
    op_s      = max(compute_s, sram_s, tier_s)

The ops run one after another (latency = sum of op_s). For a GEMM streaming from DRAM this
is the roofline exactly (tests/test_screen.py); on the bundled designs it is an estimate
within -35%..+40% of the engine's latency, mostly within 10% (operands placed per op by the
placement, where the engine's liveness allocator may keep more on chip; neighbouring ops
run one after another, where the engine may overlap them). Energy is the sum of the ops' dynamic energy with compulsory traffic
(MACs x energy per MAC, vector ops, SRAM and tier bytes x their energies per bit) plus
leakage and background power over that latency; area is exact, and the capacity margin is
the engine's allocator's for the design's categorical choices, shifted by each candidate's
tier capacities. Aggregation over weighted workloads and constraint values follow the trial's rules
(dse.search.objective). IMC tiles, prefetch and spilled roles are not modelled: such a
study cannot be screened (a SpecError says so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.search.expressions import evaluate_arrays
from dse.search.objective import CAPACITY_MARGIN, build_architecture
from dse.search.screen_errors import unscreenable
from dse.sim import systolic
from dse.sim.engine import plan_memory
from dse.sim.map import compatible_units
from dse.spec.architecture import Architecture, ImcTile, SystolicArray, VectorUnit
from dse.tech.memory import BITS
from dse.tech.models import tier_model
from dse.workloads.ops import Op, Workload

if TYPE_CHECKING:
    from dse.search.resolve import Study

#: Metrics the screen estimates (objectives and constraints may use these).
SCREENED = (R.LATENCY, R.ENERGY, R.AVG_POWER, R.TOPS_PER_W, R.THROUGHPUT_OPS, R.THROUGHPUT_SAMPLES,
            R.AREA, R.ENERGY_PER_SAMPLE, CAPACITY_MARGIN)

_SECTIONS = ("compute", "sram", "memories", "static")


def feasible(constraints: list[np.ndarray], n: int) -> np.ndarray:
    """Per candidate: every constraint value at most 0 (a NaN, a constraint the screen cannot
    estimate, counts as met)."""
    if not constraints:
        return np.ones(n, dtype=bool)
    return np.all([np.nan_to_num(c, nan=0.0) <= 0 for c in constraints], axis=0)


def sample(st: "Study", n: int, seed: int | None) -> dict[str, np.ndarray]:
    """``n`` designs drawn uniformly from the study's space (each parameter on its own
    range, step or log scale), or the whole grid when the space is a grid of at most n points."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    try:
        if st.space.grid_size() <= n:
            import itertools

            grid = st.space.grid()
            points = list(itertools.product(*grid.values()))
            return {path: np.array([p[i] for p in points], dtype=object if not _numeric(v) else None)
                    for i, (path, v) in enumerate(grid.items())}
    except SpecError:
        pass  # a continuous range: no grid
    for p in st.space.parameters:
        if p.kind == "categorical":
            out[p.path] = np.array(p.choices, dtype=object if not p.is_numeric else None)[
                rng.integers(0, len(p.choices), n)]
        elif p.log:
            x = np.exp(rng.uniform(math.log(p.low), math.log(p.high), n))
            out[p.path] = np.clip(np.round(x), p.low, p.high).astype(np.int64) if p.kind == "int" else x
        elif p.kind == "int" or p.step is not None:
            step = p.step or 1
            steps = int(math.floor((p.high - p.low) / step + 1e-9))
            x = p.low + step * rng.integers(0, steps + 1, n)
            out[p.path] = x.astype(np.int64) if p.kind == "int" else x.astype(float)
        else:
            out[p.path] = rng.uniform(p.low, p.high, n)
    return out


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


@dataclass
class _OpGroup:
    """Identical ops of a workload (same shape, precision, operands): evaluated once."""

    op: Op
    count: int


def _groups(workload: Workload) -> list[_OpGroup]:
    seen: dict[tuple, _OpGroup] = {}
    for op in workload.ops:
        t = op.tensor_bytes()
        key = (op.kind == "vector", op.gemm(), op.precision, op.vector_ops, op.pattern,
               tuple((k, v["role"], v["bytes"]) for k, v in t.items()), tuple(sorted(op.on_chip)))
        if key in seen:
            seen[key].count += 1
        else:
            seen[key] = _OpGroup(op, 1)
    return list(seen.values())


class Screen:
    """The analytic evaluator of one resolved study (one chip)."""

    def __init__(self, st: "Study"):
        self.st = st
        arch = st.base_arch
        if any(isinstance(u, ImcTile) for u in arch.compute) or arch.prefetch:
            raise unscreenable(st, f"architecture '{arch.name}' has in-memory-compute tiles or "
                                   f"prefetch, which the screen does not model")
        for path in [p.path for p in st.space.parameters] + [d.path for d in st.space.derived]:
            parts = path.split(".")
            if len(parts) != 3 or parts[0] not in _SECTIONS:
                raise unscreenable(st, f"parameter '{path}' is not a field of a named component "
                                       f"(compute/sram/memories/static.<name>.<field>), which the screen needs")
        self.categorical = [p.path for p in st.space.parameters
                            if p.kind == "categorical" and not p.is_numeric]
        for path in self.categorical:
            if path.split(".")[2] not in ("technology", "dataflow"):
                raise unscreenable(st, f"categorical parameter '{path}' is not a technology or a "
                                       f"dataflow, which the screen cannot evaluate")
        self.groups = [(w.weight, w.workload, _groups(w.workload)) for w in st.workloads]
        self._archs: dict[tuple, Architecture] = {}

    # ---- designs -------------------------------------------------------------------
    def _arch(self, combo: tuple) -> Architecture:
        """The base design with one combination of the categorical values (built once)."""
        if combo not in self._archs:
            self._archs[combo] = build_architecture(self.st.base_raw, dict(zip(self.categorical, combo)))
        return self._archs[combo]

    def _fields(self, values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Every searched and derived numeric field as an array over the candidates."""
        out = {k: np.asarray(v, dtype=float) for k, v in values.items() if k not in self.categorical}
        scope: dict[str, Any] = {}
        for p in self.st.space.parameters:
            scope[p.path] = scope[p.name] = values[p.path]
        for d in self.st.space.derived:
            v = np.broadcast_to(np.asarray(evaluate_arrays(d.expr, scope), dtype=float), (n,))
            out[d.path] = v
            scope[d.path] = scope[d.name] = v
        return out

    def evaluate(self, values: dict[str, np.ndarray], chunk: int = 16384) -> dict[str, np.ndarray]:
        """Aggregated metrics (SCREENED), ``constraint_<i>`` and ``feasible`` per candidate
        (``values``: the searched parameters by path, one element per candidate)."""
        n = len(next(iter(values.values())))
        if n > chunk:  # chunks that stay in the processor's cache
            parts = [self.evaluate({k: v[i:i + chunk] for k, v in values.items()}, chunk)
                     for i in range(0, n, chunk)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        fields = self._fields(values, n)
        combos: dict[tuple, np.ndarray] = {(): np.arange(n)}
        if self.categorical:
            choices, codes = zip(*(np.unique(values[c].astype(str), return_inverse=True)
                                   for c in self.categorical))
            key = np.ravel_multi_index(codes, [len(c) for c in choices])
            combos = {}
            for k in np.unique(key):
                sel = np.flatnonzero(key == k)
                combos[tuple(values[c][sel[0]] for c in self.categorical)] = sel
        out = {m: np.full(n, np.nan) for m in SCREENED}
        out.update({f"constraint_{i}": np.full(n, np.nan) for i in range(len(self.st.constraints))})
        for combo, sel in combos.items():
            retech = {path.split(".")[1] for path, v in zip(self.categorical, combo)
                      if path.endswith(".technology") and v != self._base_tech(path)}
            part = self._evaluate_combo(self._arch(combo), {k: v[sel] for k, v in fields.items()}, len(sel),
                                        retech)
            for k, v in part.items():
                out[k][sel] = v
        cons = [out[f"constraint_{i}"] for i in range(len(self.st.constraints))]
        out["feasible"] = feasible(cons, n)
        return out

    def _base_tech(self, path: str) -> str | None:
        tier = self.st.base_arch.memory_named(path.split(".")[1])
        return tier.technology if tier is not None else None

    def _evaluate_combo(self, arch: Architecture, f: dict[str, np.ndarray], n: int,
                        retech: set[str]) -> dict[str, np.ndarray]:
        d = _Design(arch, f, n, retech)
        rows = [d.workload(w, groups) for _, w, groups in self.groups]
        weights = np.array([w for w, _, _ in self.groups], dtype=float)
        weights = weights / weights.sum()
        t = sum(w * r[R.LATENCY] for w, r in zip(weights, rows))
        e = sum(w * r[R.ENERGY] for w, r in zip(weights, rows))
        ops = sum(w * r["total_ops"] for w, r in zip(weights, rows))
        samples = sum(w * r["samples"] for w, r in zip(weights, rows))
        with np.errstate(divide="ignore", invalid="ignore"):
            agg = {R.LATENCY: t, R.ENERGY: e, R.AVG_POWER: e / t, R.TOPS_PER_W: ops / e / 1e12,
                   R.THROUGHPUT_OPS: ops / t, R.THROUGHPUT_SAMPLES: samples / t,
                   R.ENERGY_PER_SAMPLE: e / samples, R.AREA: d.area(),
                   CAPACITY_MARGIN: np.max([r[CAPACITY_MARGIN] for r in rows], axis=0)}
        out = dict(agg)
        for i, c in enumerate(self.st.constraints):
            if c.metric is None:
                out[f"constraint_{i}"] = agg[CAPACITY_MARGIN]
                continue
            if c.metric not in SCREENED:
                continue  # unknown to the screen: left NaN (counts as met)
            per = [r.get(c.metric, agg[c.metric]) for r in rows]
            vals = [(v - c.bound) if c.op == "<=" else (c.bound - v) for v in per]
            out[f"constraint_{i}"] = np.max(vals, axis=0)
        return out


class Roofline:
    """The one-chip roofline of a single fixed design, in plain floats: an op's estimated
    seconds and joules, and the chip's static power (the system and serving screens)."""

    def __init__(self, arch: Architecture):
        self._design = _Design(arch, {}, 1, set())
        self.static_power_w = _one(self._design.static_w)

    def op(self, op: Op) -> tuple[float, float]:
        """(latency_s, energy_j) of ``op`` run alone on the design."""
        t, e = self._design.op(op)
        return _one(t), _one(e)


def _one(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


class _Design:
    """Field values of one categorical combination: scalars from the built design, arrays
    (over candidates) where the study searches or derives the field."""

    def __init__(self, arch: Architecture, fields: dict[str, np.ndarray], n: int, retech: set[str]):
        self.arch, self.fields, self.n = arch, fields, n
        #: tiers whose technology this combination changes from the base design's
        self.retech = retech
        self.tiers = {m.name: m for m in arch.memories}
        self.srams = {s.name: s for s in arch.sram}
        self.models = {m.name: tier_model(m) for m in arch.memories}
        # energy per byte of sequential traffic, from each tier's technology model
        self.static_w = self.static_power()
        self._margins: dict[str, float] = {}
        # the share of a tier's peak bandwidth a sequential stream gets (a DRAM refreshes part
        # of the time: the tier model's own occupancy of 1 MB against the peak's)
        self.tier_efficiency = {name: (1e6 / model.bandwidth) / model.occupancy_s(1e6, "read", "sequential")
                                for name, model in self.models.items()}
        self.tier_j_per_byte = {name: {kind: sum(model.energy_j(1e6, kind, "sequential", 0.0).values()) / 1e6
                                       for kind in ("read", "write")} for name, model in self.models.items()}

    def get(self, section: str, item, attr: str) -> np.ndarray | float:
        path = f"{section}.{item.name}.{attr}"
        if path in self.fields:
            return self.fields[path]
        return float(getattr(item, attr))

    def area(self) -> np.ndarray:
        total = np.zeros(self.n)
        for section in _SECTIONS:
            for item in getattr(self.arch, section):
                total = total + self.get(section, item, "area")
        return total

    def static_power(self) -> np.ndarray:
        total = np.zeros(self.n)
        for section in _SECTIONS:
            for item in getattr(self.arch, section):
                total = total + self.get(section, item, "leakage")
        for m in self.arch.memories:
            # the tier model's static power (background, refresh) with this candidate's
            # background power: searched or derived, or the library's per unit times the
            # units where the candidate's technology differs from the base design's
            model_w = sum(self.models[m.name].static_power_w.values())
            if f"memories.{m.name}.background_power" in self.fields:
                bg = self.fields[f"memories.{m.name}.background_power"]
            elif m.name in self.retech and f"memories.{m.name}.channels" in self.fields:
                bg = m.background_power / m.channels * self.fields[f"memories.{m.name}.channels"]
            else:
                bg = m.background_power
            total = total + model_w - m.background_power + bg
        return total

    def bandwidth(self, tier) -> np.ndarray | float:
        return self.get("memories", tier, "channels") * self.get("memories", tier, "bandwidth_per_channel")

    # ---- one workload ----------------------------------------------------------------
    def workload(self, w: Workload, groups: list[_OpGroup]) -> dict[str, np.ndarray]:
        latency = np.zeros(self.n)
        dynamic = np.zeros(self.n)
        for g in groups:
            t, e = self.op(g.op)
            latency = latency + g.count * t
            dynamic = dynamic + g.count * e
        energy = dynamic + self.static_w * latency
        ops = w.total_ops
        with np.errstate(divide="ignore", invalid="ignore"):
            return {R.LATENCY: latency, R.ENERGY: energy, "total_ops": ops, "samples": w.samples,
                    R.AVG_POWER: energy / latency, R.TOPS_PER_W: ops / energy / 1e12,
                    R.THROUGHPUT_OPS: ops / latency, R.THROUGHPUT_SAMPLES: w.samples / latency,
                    R.ENERGY_PER_SAMPLE: energy / w.samples, CAPACITY_MARGIN: self.capacity_margin(w)}

    def capacity_margin(self, w: Workload) -> np.ndarray:
        """Bytes beyond what the memories hold: the engine's allocator on this combination's
        design, shifted by how much more (or less) the memory tiers hold in a candidate."""
        if w.name not in self._margins:
            self._margins[w.name] = plan_memory(self.arch, w).margin_bytes
        held = np.zeros(self.n)
        for tier in self.arch.memories:
            held = held + self.get("memories", tier, "capacity") - float(tier.capacity)
        return self._margins[w.name] - held

    def op(self, op: Op) -> tuple[np.ndarray, np.ndarray]:
        """(time bound, dynamic energy) of one op on every candidate."""
        units = compatible_units(self.arch, op)
        unit = next(u for u in self.arch.compute if u.name == units[0])
        buf = self.arch.buffer_of(unit)
        tensors = op.tensor_bytes()
        energy = np.zeros(self.n)
        m, n, k, reps = op.gemm()
        eb = op.elem_bytes
        used: dict[str, Any] = {key: t["bytes"] for key, t in tensors.items()}
        if op.kind == "vector":
            if isinstance(unit, VectorUnit):
                rate = (self.get("compute", unit, "lanes") * self.get("compute", unit, "count")
                        * self.get("compute", unit, "ops_per_lane_per_cycle") * self.get("compute", unit, "clock"))
                energy = energy + op.vector_ops * self.get("compute", unit, "energy_per_op")
            else:
                rate = self.get("compute", unit, "cols") * self.get("compute", unit, "count") * \
                    self.get("compute", unit, "clock")
                energy = energy + op.vector_ops * max(unit.energy_per_mac.values(), default=0.0)
            compute_s = op.vector_ops / rate
        elif isinstance(unit, SystolicArray):
            rate = unit.macs_per_cycle.get(op.precision)
            if rate is None:
                raise DesignError(f"compute unit '{unit.name}' does not support {op.precision}")
            rows, cols = self.get("compute", unit, "rows"), self.get("compute", unit, "cols")
            count, clock = self.get("compute", unit, "count"), self.get("compute", unit, "clock")
            best = None
            for df in unit.dataflows:  # the fastest dataflow per candidate (ties: the first)
                s_r, s_c, t = systolic.MAPPING[df](m, n, k)
                folds = np.ceil(s_r / rows) * np.ceil(s_c / cols) * reps
                per_fold = systolic.fill_drain_cycles(rows, cols, df) + (t if rate == 1.0 else math.ceil(t / rate))
                cycles = np.ceil(folds / count) * per_fold
                ra, rb = _sram_reads(rows, cols, m, n, k, df)
                if best is None:
                    best = [cycles, ra, rb]
                else:
                    faster = cycles < best[0]
                    best = [np.where(faster, cycles, best[0]), np.where(faster, ra, best[1]),
                            np.where(faster, rb, best[2])]
            cycles, ra, rb = best
            compute_s = cycles / clock
            used["a"], used["b"] = ra * reps * eb, rb * reps * eb
            energy = energy + op.macs * unit.energy_per_mac.get(op.precision, 0.0)
        else:  # a GEMM on a vector unit: 2 ops per MAC
            rate = (self.get("compute", unit, "lanes") * self.get("compute", unit, "count")
                    * self.get("compute", unit, "ops_per_lane_per_cycle") * self.get("compute", unit, "clock"))
            compute_s = 2.0 * op.macs / rate
            used["a"], used["b"] = m * k * n * eb * reps, k * n * m * eb * reps
            energy = energy + 2.0 * op.macs * self.get("compute", unit, "energy_per_op")
        homes = self._homes(tensors, set(op.on_chip), buf)
        fused = set(op.on_chip)
        reads: dict[str, Any] = {}   # SRAM name -> bytes read from it
        writes: dict[str, Any] = {}  # SRAM name -> bytes written to it
        tier_bytes: dict[str, Any] = {}
        for key, t in tensors.items():
            kind = "write" if key == "out" else "read"
            on = homes[key].get(None, 0.0)
            for tier, mask in homes[key].items():
                if tier is not None:  # compulsory traffic: the operand moved once
                    self._add(tier_bytes, tier, t["bytes"] * mask)
                    energy = energy + t["bytes"] * mask * self.tier_j_per_byte[tier][kind]
            # buffer traffic (Planner._stage): the unit reads (writes) the operand where it
            # sits on chip; an off-chip operand is also staged through the unit's buffer
            placed = self.arch.tier_of(t["role"])
            home_sram = buf.name if key in fused and buf is not None else placed if placed in self.srams else None
            unit_side, staging = (writes, reads) if key == "out" else (reads, writes)
            if home_sram is not None:
                self._add(unit_side, home_sram, used[key] * on)
            if buf is not None:
                self._add(unit_side, buf.name, used[key] * (1.0 - on))
                self._add(staging, buf.name, t["bytes"] * (1.0 - on))
        sram_s = np.zeros(self.n)
        for name in set(reads) | set(writes):
            s = self.srams[name]
            r, w = reads.get(name, 0.0), writes.get(name, 0.0)
            sram_s = np.maximum(sram_s, (r + w) / self.get("sram", s, "bandwidth"))
            energy = energy + BITS * (r * s.read_energy + w * s.write_energy)
        tier_s = np.zeros(self.n)
        for name, b in tier_bytes.items():
            tier_s = np.maximum(tier_s, b / (self.bandwidth(self.tiers[name]) * self.tier_efficiency[name]))
        return np.maximum(np.maximum(compute_s, sram_s), tier_s), energy

    @staticmethod
    def _add(d: dict, key: str, value) -> None:
        if isinstance(value, np.ndarray) or value:
            d[key] = d.get(key, 0.0) + value

    def _homes(self, tensors: dict, fused: set[str], buf) -> dict[str, dict[str | None, np.ndarray]]:
        """Per operand: {tier name or None (on chip): mask over candidates} (Planner._homes:
        SRAM-placed operands stay while they fit, inputs first then largest first; the SRAM
        staging the unit's tiles keeps 1/8 for them)."""
        first = self.arch.memories[0].name
        ones = 1.0
        homes: dict[str, dict[str | None, np.ndarray]] = {}
        budget = {}
        for name, s in self.srams.items():
            budget[name] = self.get("sram", s, "capacity") * (7 / 8 if buf is not None and name == buf.name else 1.0) \
                + np.zeros(self.n)
        on_sram = sorted((k for k in tensors if k not in fused and self.arch.tier_of(tensors[k]["role"]) in self.srams),
                         key=lambda k: (k == "out", -tensors[k]["bytes"]))
        for key, t in tensors.items():
            where = self.arch.tier_of(t["role"])
            if key in fused or where in self.srams:
                homes[key] = {None: ones}
            else:
                homes[key] = {where: ones}
        for key in on_sram:
            where = self.arch.tier_of(tensors[key]["role"])
            fits = tensors[key]["bytes"] <= budget[where]
            if fits.all():  # constant masks stay scalars: most operands never move
                budget[where] = budget[where] - tensors[key]["bytes"]
                homes[key] = {None: 1.0}
            elif not fits.any():
                homes[key] = {first: 1.0}
            else:
                budget[where] = np.where(fits, budget[where] - tensors[key]["bytes"], budget[where])
                homes[key] = {None: fits.astype(float), first: (~fits).astype(float)}
        return homes


def _sram_reads(rows, cols, m: int, n: int, k: int, dataflow: str):
    """systolic.sram_reads over arrays of array sizes."""
    if dataflow == "weight_stationary":
        return m * k * np.ceil(n / cols), k * n + 0 * rows
    if dataflow == "output_stationary":
        return m * k * np.ceil(n / cols), k * n * np.ceil(m / rows)
    return m * k + 0 * rows, k * n * np.ceil(m / cols)
