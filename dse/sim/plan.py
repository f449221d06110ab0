"""What one op costs on one compute unit: time of its compute, bytes per tier, actions.

The plan is pure arithmetic (no simulation): the engine turns it into a
pipeline of tile transfers and compute on SimPy resources, where queuing and
overlap decide the actual time.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from math import ceil

from dse.errors import DesignError
from dse.spec.architecture import Architecture, ImcTile, SystolicArray, VectorUnit
from dse.sim import systolic
from dse.sim.tiling import MIN_TILE_BYTES, tile_gemm, tile_vector
from dse.tech.memory import BITS
from dse.workloads.ops import Op


@dataclass
class OpPlan:
    op: Op
    unit: str
    compute_s: float                      # busy time of the unit (incl. buffer bandwidth limits)
    n_tiles: int
    sram_read: dict[str, float] = field(default_factory=dict)
    sram_write: dict[str, float] = field(default_factory=dict)
    macs: float = 0.0
    vector_ops: float = 0.0
    #: dynamic energy by component name (J)
    energy: dict[str, float] = field(default_factory=dict)
    #: off-chip transfers: (tier, "read"|"write", bytes, pattern, access_bytes)
    transfers: list[tuple] = field(default_factory=list)
    #: named parts of a component's energy worth reporting (e.g. an IMC tile's ADCs)
    energy_detail: dict[str, float] = field(default_factory=dict)
    #: port time per SRAM (s): bytes through it / its bandwidth
    sram_s: dict[str, float] = field(default_factory=dict)
    #: the compute unit's own time, before SRAM ports can stretch it
    unit_s: float = 0.0
    #: bus occupancy per tier for reads and for writes (s), from the tier's technology model
    read_s: dict[str, float] = field(default_factory=dict)
    write_s: dict[str, float] = field(default_factory=dict)

    def _bytes(self, kind: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for tier, k, nbytes, *_ in self.transfers:
            if k == kind:
                _add(out, tier, nbytes)
        return out

    @property
    def reads(self) -> dict[str, float]:
        """Tier -> bytes fetched from it."""
        return self._bytes("read")

    @property
    def writes(self) -> dict[str, float]:
        """Tier -> bytes written to it."""
        return self._bytes("write")

    def migration(self, nbytes: float, source: str, target: str, models: dict) -> None:
        """Make this plan a copy of ``nbytes`` from tier ``source`` to tier ``target``."""
        for tier, kind in ((source, "read"), (target, "write")):
            self.transfers.append((tier, kind, nbytes, "sequential", 0.0))
        charge_transfers(self, models)

    def transfer_s(self) -> dict[str, float]:
        """Time each tier's bus (and each SRAM's port) needs for this op, uncontended."""
        tiers = set(self.read_s) | set(self.write_s)
        out = {t: self.read_s.get(t, 0.0) + self.write_s.get(t, 0.0) for t in tiers}
        out.update(self.sram_s)
        return out


def _add(d: dict[str, float], key: str, value: float) -> None:
    if value:
        d[key] = d.get(key, 0.0) + value


def charge_transfers(plan: OpPlan, models: dict) -> None:
    """Bus time and energy of every off-chip transfer of a plan, from its tier's model."""
    for tier, kind, nbytes, pattern, access in plan.transfers:
        model = models[tier]
        _add(plan.read_s if kind == "read" else plan.write_s, tier, model.occupancy_s(nbytes, kind, pattern, access))
        _add(plan.energy, tier, sum(model.energy_j(nbytes, kind, pattern, access).values()))


def crossbars_for(params, op: Op) -> int:
    """Crossbars one copy of an op's weights needs (every group of a grouped conv included)."""
    from dse.tech.imc import crossbars_for as needed

    m, n, k, reps = op.gemm()
    return needed(params, m, n, k, reps, weight_bits=int(8 * op.elem_bytes))


class Planner:
    """Plans ops for one architecture; caches by (op shape, unit)."""

    def __init__(self, arch: Architecture, models: dict | None = None,
                 spill: dict[str, list[tuple[str, float]]] | None = None):
        from dse.tech.models import tier_model

        self.arch = arch
        self.models = models or {m.name: tier_model(m) for m in arch.memories}
        #: role -> [(tier, fraction)] where a role overflows its tier into the next ones
        self.spill = spill or {}
        #: op -> copies of its weights held in IMC crossbars
        self.imc_copies: dict[str, int] = {}
        #: role -> the tier its tensors are copied to before use
        self.prefetch_to = {pf.role: pf.target for pf in arch.prefetch}
        self.memories = {m.name: m for m in arch.memories}
        self.srams = {s.name: s for s in arch.sram}
        self.units = {u.name: u for u in arch.compute}

    # ---- where tensors live ------------------------------------------------
    def _homes(self, tensors: dict, fused: set[str], buf) -> dict[str, str]:
        """Where each operand of an op lives: its role's placement; operands placed on an
        SRAM stay there (inputs first, then largest first) while they fit, the rest fall
        back to the first off-chip tier. An SRAM that also stages the unit's tiles keeps
        1/8 for them."""
        homes = {key: self.arch.tier_of(t["role"]) for key, t in tensors.items()}
        budget = {name: s.capacity * (7 / 8 if buf is not None and name == buf.name else 1.0)
                  for name, s in self.srams.items()}
        # inputs first (a tiled GEMM may re-read them many times; an output is written once)
        on_sram = sorted((k for k in tensors if k not in fused and homes[k] in self.srams),
                         key=lambda k: (k == "out", -tensors[k]["bytes"]))
        for key in on_sram:
            where = homes[key]
            if tensors[key]["bytes"] <= budget[where]:
                budget[where] -= tensors[key]["bytes"]
            else:
                homes[key] = self.arch.memories[0].name
        return homes

    def plan(self, op: Op, unit_name: str, input_tier: str | None = None) -> OpPlan:
        """Plan ``op`` on a unit. ``input_tier``: a producer of this op wrote its output to that
        memory tier, so the op's activation input is read from there, not from on chip."""
        unit = self.units[unit_name]
        buf = self.arch.buffer_of(unit)
        tensors = op.tensor_bytes()
        fused = set(op.on_chip)
        homes = self._homes(tensors, fused, buf)
        if input_tier is not None:
            for key in ("a", "in"):
                if key in tensors and key not in fused and tensors[key]["role"] == "activations":
                    homes[key] = input_tier
        for key in fused & set(tensors):
            # produced and consumed tile by tile with a neighbouring op: stays in the buffer
            homes[key] = buf.name if buf is not None else self.arch.tier_of(tensors[key]["role"])
        streamed = {key: homes[key] in self.memories for key in tensors}
        if buf is None:
            if any(streamed.values()):
                raise DesignError(f"compute unit '{unit.name}' has no SRAM buffer to stage tiles of op '{op.name}'")
            free = float("inf")
        else:
            used = sum(tensors[k]["bytes"] for k in tensors if homes[k] == buf.name and k not in fused)
            free = buf.capacity - used
            # an operand placed on another SRAM that did not fit there is staged through what
            # is left of that SRAM (the TPU's overflowing outputs go through the unified
            # buffer, not the weight FIFO)
            spilled = {self.arch.tier_of(tensors[k]["role"]) for k in tensors
                       if homes[k] in self.memories and self.arch.tier_of(tensors[k]["role"]) in self.srams}
            for name in spilled - {buf.name}:
                held = sum(tensors[k]["bytes"] for k in tensors if homes[k] == name and k not in fused)
                free += max(0.0, self.srams[name].capacity - held)
        # tiles large enough that two in flight cover the latency of the tiers they come from
        min_tile = max([MIN_TILE_BYTES] + [self.models[homes[k]].latency_s * self.models[homes[k]].bandwidth
                                           for k in tensors if streamed[k]])
        if op.kind == "vector":
            plan = self._plan_vector(op, unit, buf, tensors, homes, streamed, free, min_tile)
        elif isinstance(unit, ImcTile):
            plan = self._plan_imc(op, unit, buf, tensors, homes)
        else:
            plan = self._plan_gemm(op, unit, buf, tensors, homes, streamed, free, min_tile)
        plan.unit_s = plan.compute_s
        plan.compute_s = max(plan.compute_s, self._sram_time(plan))
        self._charge_storage(plan)
        return plan

    def _stage(self, plan: OpPlan, key: str, where: str, buf, moved: float, used: float) -> None:
        """Buffer traffic of one operand: an off-chip operand is staged into the buffer
        (``moved`` bytes, an output drained out of it); the unit reads ``used`` bytes of an
        input from, or writes an output to, the SRAM holding it."""
        sram = where if where in self.srams else (buf.name if buf else None)
        if sram is None:
            return
        off_chip = where in self.memories
        if key == "out":
            _add(plan.sram_write, sram, used)
            if off_chip:
                _add(plan.sram_read, sram, moved)
        else:
            _add(plan.sram_read, sram, used)
            if off_chip:
                _add(plan.sram_write, sram, moved)

    def _plan_imc(self, op, unit: ImcTile, buf, tensors, homes) -> OpPlan:
        """Weights sit in crossbars; input vectors stream in bit-serially, ADCs read the columns."""
        from dse.tech.imc import imc_gemm_cost, program_cost

        params = unit.params()
        m, n, k, reps = op.gemm()
        bits = int(8 * op.elem_bytes)
        copies = self.imc_copies.get(op.name, 1)
        cost = imc_gemm_cost(params, m, n, k, weight_bits=bits, input_bits=bits)
        # copies of the weights take ceil(M / copies) input vectors each, side by side
        time_s = cost.time_s * ceil(m / copies) / m
        plan = OpPlan(op, unit.name, time_s, 1, macs=float(op.macs))
        # groups of a grouped conv sit on their own crossbars and run side by side
        # leakage is charged once for the whole run by the static ledger, not per op
        parts = {key: value * reps for key, value in cost.energy().items() if key != "leakage"}
        if not unit.weights_resident:
            e_prog, t_prog, _ = program_cost(params, k, n, weight_bits=bits)
            parts["programming"] = e_prog * reps * copies
            plan.compute_s += t_prog
        for key, value in parts.items():
            plan.energy_detail[f"{unit.name}_{key}"] = value
        _add(plan.energy, unit.name, sum(parts.values()))
        plan.n_tiles = min(m, 64)
        for key, t in tensors.items():
            where = homes[key]
            if key == "b":
                if not unit.weights_resident and where in self.memories:
                    self._traffic(plan, t["role"], where, "read", t["bytes"])  # data to program
                continue
            if where in self.memories:
                self._traffic(plan, t["role"], where, "write" if key == "out" else "read", t["bytes"])
            self._stage(plan, key, where, buf, t["bytes"], t["bytes"])
        return plan

    def _too_small(self, op: Op, buf, need: str, free: float) -> DesignError:
        cap = f"{buf.capacity / 2**10:.0f} KiB" if buf is not None else "0 B"
        return DesignError(
            f"SRAM '{buf.name if buf else '?'}' ({cap}, {max(free, 0) / 2**10:.0f} KiB free beside resident "
            f"data) is too small for any tile of op '{op.name}': {need}")

    def _plan_gemm(self, op, unit, buf, tensors, homes, streamed, free, min_tile) -> OpPlan:
        m, n, k, reps = op.gemm()
        eb = op.elem_bytes
        plan = OpPlan(op, unit.name, 0.0, 1, macs=float(op.macs))
        if isinstance(unit, SystolicArray):
            rate = unit.macs_per_cycle.get(op.precision)
            if rate is None:
                raise DesignError(f"compute unit '{unit.name}' does not support {op.precision} "
                                  f"(supports {', '.join(unit.macs_per_cycle)}) for op '{op.name}'; "
                                  f"run the workload at a supported precision (dse run ... --precision "
                                  f"{next(iter(unit.macs_per_cycle))})")
            # the fastest of the unit's dataflows for this shape (ties: the first listed)
            dataflow = min(unit.dataflows, key=lambda d: systolic.gemm_cycles(
                unit.rows, unit.cols, m, n, k, d, reps, unit.count, rate))
            cycles = systolic.gemm_cycles(unit.rows, unit.cols, m, n, k, dataflow, reps, unit.count, rate)
            compute_s = cycles / unit.clock
            min_kt, min_nt = (unit.rows, unit.cols) if dataflow != "input_stationary" else (unit.rows, 1)
            ra, rb = systolic.sram_reads(unit.rows, unit.cols, m, n, k, dataflow)
            e_mac = unit.energy_per_mac.get(op.precision, 0.0)
            _add(plan.energy, unit.name, op.macs * e_mac)
        else:  # a GEMM on a vector unit: 2 ops per MAC at the lane rate
            compute_s = 2.0 * op.macs / unit.peak_ops_per_s
            min_kt = min_nt = 1
            ra, rb = m * k * n, k * n * m
            _add(plan.energy, unit.name, 2.0 * op.macs * unit.energy_per_op)
        tiling = tile_gemm(m, n, k, eb, free, streamed["a"], streamed["b"], streamed["out"], min_kt, min_nt,
                           min_tile)
        if tiling is None:
            need = 2 * eb * (streamed["a"] * min_kt + streamed["b"] * min_kt * min(n, min_nt)
                             + streamed["out"] * min(n, min_nt))
            raise self._too_small(op, buf, f"the smallest tile needs {need / 2**10:.0f} KiB (double-buffered)", free)
        plan.n_tiles = tiling.n_tiles * reps
        plan.compute_s = compute_s
        fetches = {"a": tiling.reads_a, "b": tiling.reads_b, "out": 1}
        # the array reads its operands from the buffer (or the SRAM holding them) per dataflow
        used = {"a": ra * reps * eb, "b": rb * reps * eb, "out": tensors["out"]["bytes"]}
        for key, t in tensors.items():
            where = homes[key]
            moved = t["bytes"] * fetches[key]
            if where in self.memories:
                self._traffic(plan, t["role"], where, "write" if key == "out" else "read", moved)
            self._stage(plan, key, where, buf, moved, used[key])
        return plan

    def _plan_vector(self, op, unit, buf, tensors, homes, streamed, free, min_tile) -> OpPlan:
        plan = OpPlan(op, unit.name, 0.0, 1, vector_ops=float(op.vector_ops))
        if isinstance(unit, VectorUnit):
            rate = unit.peak_ops_per_s
            _add(plan.energy, unit.name, op.vector_ops * unit.energy_per_op)
        else:  # a systolic array used as a SIMD row: one op per column per cycle
            rate = unit.cols * unit.count * unit.clock
            e_mac = max(unit.energy_per_mac.values(), default=0.0)
            _add(plan.energy, unit.name, op.vector_ops * e_mac)
        plan.compute_s = op.vector_ops / rate
        per_el = sum(t["bytes"] for k, t in tensors.items() if streamed[k]) / max(op.elements, 1)
        n_tiles = tile_vector(op.elements, per_el, free, min_tile)
        if n_tiles is None:
            raise self._too_small(op, buf, f"one element needs {2 * per_el:.0f} B (double-buffered)", free)
        plan.n_tiles = n_tiles
        for key, t in tensors.items():
            where = homes[key]
            if where in self.memories:
                random = key == "in" and op.pattern == "random" and op.access_bytes
                self._traffic(plan, t["role"], where, "write" if key == "out" else "read", t["bytes"],
                              "random" if random else "sequential", op.access_bytes if random else 0.0)
            self._stage(plan, key, where, buf, t["bytes"], t["bytes"])
        return plan

    def _sram_time(self, plan: OpPlan) -> float:
        """The buffer's bandwidth can bound the unit: bytes through each SRAM / its bandwidth.

        Records each SRAM's port time in ``plan.sram_s``: the engine holds the SRAM's port
        for it, so units that read one SRAM at the same time share its bandwidth."""
        t = 0.0
        for name in set(plan.sram_read) | set(plan.sram_write):
            moved = plan.sram_read.get(name, 0.0) + plan.sram_write.get(name, 0.0)
            plan.sram_s[name] = moved / self.srams[name].bandwidth
            t = max(t, plan.sram_s[name])
        return t

    def _traffic(self, plan: OpPlan, role: str, where: str, kind: str, nbytes: float,
                 pattern: str = "sequential", access_bytes: float = 0.0) -> None:
        """Record an off-chip transfer, split across tiers where the role spilled; reads of a
        prefetched role come from its prefetch target (the engine copies them there first)."""
        target = self.prefetch_to.get(role) if kind == "read" else None
        for tier, frac in [(target, 1.0)] if target else self.spill.get(role, [(where, 1.0)]):
            if nbytes * frac > 0:
                plan.transfers.append((tier, kind, nbytes * frac, pattern, access_bytes))

    def _charge_storage(self, plan: OpPlan) -> None:
        for name, b in plan.sram_read.items():
            _add(plan.energy, name, b * BITS * self.srams[name].read_energy)
        for name, b in plan.sram_write.items():
            _add(plan.energy, name, b * BITS * self.srams[name].write_energy)
        charge_transfers(plan, self.models)


def allocate_imc_replicated(arch: Architecture, ops: list[Op]) -> dict[str, tuple[str, int]]:
    """op -> (IMC unit, copies of its weights). Crossbars left over after every layer that
    fits has one copy hold extra copies of all of them (as ISAAC replicates layers), so
    copies of a layer process different input vectors side by side."""
    from dse.tech.imc import map_gemm

    out: dict[str, tuple[str, int]] = {}
    for unit in (u for u in arch.compute if isinstance(u, ImcTile)):
        params = unit.params()
        left, used, mine = params.crossbars, 0, []
        held: dict[str, str] = {}  # weight tensor -> the op whose crossbars hold it
        for op in ops:
            if op.name in out or op.kind == "vector" or op.b_role != "weights":
                continue
            if op.weight_key in held:  # shares weights already in the crossbars
                out[op.name] = (unit.name, 1)
                continue
            m, n, k, _ = op.gemm()
            need = crossbars_for(params, op)
            if map_gemm(params, m, n, k, weight_bits=int(8 * op.elem_bytes)).fits and need <= left:
                out[op.name] = (unit.name, 1)
                held[op.weight_key] = op.name
                mine.append(op)
                left -= need
                used += need
        # spare crossbars hold extra copies of the layers that take longest (most input
        # vectors per copy), one copy at a time, as ISAAC balances its layer pipeline
        need = {op.name: crossbars_for(params, op) for op in mine}
        vectors = {op.name: op.gemm()[0] for op in mine}
        copies = {op.name: 1 for op in mine}
        heap = [(-vectors[n], i, n) for i, n in enumerate(copies)]
        heapq.heapify(heap)
        while heap:
            _, i, name = heapq.heappop(heap)
            if need[name] > left or copies[name] >= vectors[name]:
                continue
            copies[name] += 1
            left -= need[name]
            heapq.heappush(heap, (-ceil(vectors[name] / copies[name]), i, name))
        for name, c in copies.items():
            out[name] = (unit.name, c)
    return out


def imc_utilisation(arch: Architecture, ops: list[Op], assigned: dict[str, str],
                    copies: dict[str, int] | None = None) -> dict[str, float]:
    """Fraction of each IMC unit's crossbars holding weights (copies included)."""
    used: dict[str, float] = {}
    counted: set[str] = set()
    for op in ops:
        unit = assigned.get(op.name)
        if unit is None or op.weight_key in counted:
            continue
        counted.add(op.weight_key)
        u = next(c for c in arch.compute if c.name == unit)
        used[unit] = used.get(unit, 0.0) + crossbars_for(u.params(), op) * (copies or {}).get(op.name, 1)
    return {u.name: used.get(u.name, 0.0) / u.params().crossbars for u in arch.compute if isinstance(u, ImcTile)}


def compatible_units(arch: Architecture, op: Op, imc: dict[str, str] | None = None) -> list[str]:
    """Units that can run an op, best kind first: IMC tiles for the weight GEMMs they hold,
    arrays for other GEMMs, vector units for the rest."""
    if imc and op.name in imc:
        return [imc[op.name]]
    arrays = [u.name for u in arch.compute if isinstance(u, SystolicArray)]
    vectors = [u.name for u in arch.compute if isinstance(u, VectorUnit)]
    if op.kind == "vector":
        return vectors or arrays
    if arrays:
        supported = [u.name for u in arch.compute
                     if isinstance(u, SystolicArray) and op.precision in u.macs_per_cycle]
        return supported or arrays
    return vectors
