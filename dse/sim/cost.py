"""The cost pass: what one op costs on one compute unit, given where its tensors live.

Pure arithmetic, no simulation: the compute kind's model (dse/sim/compute/) gives the
unit's time and energy, the tiling decides how often each operand moves, and the
technology model of each tier (dse/tech/) gives the bus time and energy of every
transfer. Where tensors live is the allocator's answer (a ``Home`` per operand); this
pass never decides it. The executor turns a plan into a pipeline of tile transfers
and compute on SimPy resources, where queuing and overlap decide the actual time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dse.errors import DesignError
from dse.sim.allocate import Home
from dse.sim.tiling import MIN_TILE_BYTES, tile_gemm, tile_vector
from dse.spec.architecture import Architecture
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

    def for_op(self, op: Op) -> "OpPlan":
        """The same plan for another op of the same shape (costs are shared, not copied)."""
        plan = object.__new__(OpPlan)
        plan.__dict__.update(self.__dict__)
        plan.op = op
        return plan

    def _bytes(self, kind: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for tier, k, nbytes, *_ in self.transfers:
            if k == kind:
                add(out, tier, nbytes)
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
        # (in the order the plan names them, not a set's: where two tie, the op's ``bound`` is
        # the first, the same in every process whatever PYTHONHASHSEED)
        tiers = dict.fromkeys([*self.read_s, *self.write_s])
        out = {t: self.read_s.get(t, 0.0) + self.write_s.get(t, 0.0) for t in tiers}
        out.update(self.sram_s)
        return out

    def bound_s(self) -> float:
        """Uncontended time of the op: its unit or its busiest bus/port, whichever is longer."""
        return max(self.compute_s, *self.transfer_s().values(), 0.0)


def add(d: dict[str, float], key: str, value: float) -> None:
    if value:
        d[key] = d.get(key, 0.0) + value


def charge_transfers(plan: OpPlan, models: dict) -> None:
    """Bus time and energy of every off-chip transfer of a plan, from its tier's model."""
    for tier, kind, nbytes, pattern, access in plan.transfers:
        model = models[tier]
        add(plan.read_s if kind == "read" else plan.write_s, tier, model.occupancy_s(nbytes, kind, pattern, access))
        add(plan.energy, tier, sum(model.energy_j(nbytes, kind, pattern, access).values()))


@dataclass
class OpContext:
    """What the compute kind needs to plan an op: its operands, where they are, the room."""

    op: Op
    buf: object | None                    # the SRAM staging the unit's tiles
    tensors: dict[str, dict]              # op.tensor_bytes()
    place: dict[str, str]                 # operand -> the SRAM or first tier holding it
    homes: dict[str, Home]                # operand -> its full home (tiers and fractions)
    streamed: dict[str, bool]             # operand comes from off chip
    free: float                           # buffer bytes free for double-buffered tiles
    min_tile: float                       # smallest tile worth a transfer


class Coster:
    """Plans ops for one architecture from the allocator's homes (see the module docstring)."""

    def __init__(self, arch: Architecture, models: dict):
        self.arch = arch
        self.models = models
        #: op -> copies of its weights held in IMC crossbars (the mapper's decision)
        self.imc_copies: dict[str, int] = {}
        #: role -> the tier its tensors are copied to before use
        self.prefetch_to = {pf.role: pf.target for pf in arch.prefetch}
        self.memories = {m.name: m for m in arch.memories}
        self.srams = {s.name: s for s in arch.sram}
        self.units = {u.name: u for u in arch.compute}
        #: plans made so far, by what they depend on (dse/sim/compute: plan_op)
        self.planned: dict[tuple, tuple] = {}
        #: unit -> the SRAM staging its tiles
        self.buffers: dict[str, object] = {}
        #: an IMC unit's cost of a GEMM, by (unit, M, N, K, bits) (dse/sim/compute/imc.py)
        self.imc_costs: dict[tuple, object] = {}

    def context(self, op: Op, unit_name: str, homes: dict[str, Home], resident: dict[str, float],
                tensors: dict[str, dict] | None = None) -> OpContext:
        """The op's context beside ``resident`` bytes (``tensors``: its ``tensor_bytes()``, if
        known)."""
        ctx, rooms = self.placed(op, unit_name, homes, tensors)
        ctx.free = self.free_bytes(ctx, rooms, resident)
        return ctx

    def placed(self, op: Op, unit_name: str, homes: dict[str, Home],
               tensors: dict[str, dict] | None = None) -> tuple[OpContext, tuple[str, ...]]:
        """The op's context but its free bytes, which alone depend on what else is resident;
        and the SRAMs beside the buffer whose room it may use (see ``free_bytes``)."""
        unit = self.units[unit_name]
        buf = self.buffers.get(unit_name, False)
        if buf is False:
            buf = self.buffers[unit_name] = self.arch.buffer_of(unit)
        if tensors is None:
            tensors = op.tensor_bytes()
        fused = op.on_chip
        memories, srams, tier_of = self.memories, self.srams, self.arch.tier_of
        place: dict[str, str] = {}
        streamed: dict[str, bool] = {}
        full: dict[str, Home] = {}
        # tiles large enough that two in flight cover the latency of the tiers they come from
        min_tiles = [MIN_TILE_BYTES]
        # an operand placed on another SRAM that did not fit there is staged through what
        # is left of that SRAM (the TPU's overflowing outputs go through the unified
        # buffer, not the weight FIFO)
        spilled: set[str] = set()
        for key, t in tensors.items():
            home = full[key] = homes.get(key) or ()
            if key in fused or not home:
                # produced and consumed tile by tile with a neighbouring op: stays in the buffer
                where = place[key] = buf.name if buf is not None else tier_of(t["role"])
            else:
                where = place[key] = home[0][0]
            if where in memories:
                streamed[key] = True
                model = self.models[where]
                min_tiles.append(model.latency_s * model.bandwidth)
                if buf is not None and tier_of(t["role"]) in srams:
                    spilled.add(tier_of(t["role"]))
            else:
                streamed[key] = False
        rooms: tuple[str, ...] = ()
        if buf is None:
            if any(streamed.values()):
                raise DesignError(f"compute unit '{unit.name}' has no SRAM buffer to stage tiles of op '{op.name}'")
        elif spilled:
            rooms = tuple(spilled - {buf.name})
        ctx = OpContext(op, buf, tensors, place, full, streamed, 0.0, max(min_tiles))
        return ctx, rooms

    def free_bytes(self, ctx: OpContext, rooms: tuple[str, ...], resident: dict[str, float]) -> float:
        """Buffer bytes free for the op's tiles beside ``resident`` bytes: what its buffer has
        left, and what is left of the other SRAMs ``rooms`` (see ``placed``)."""
        buf = ctx.buf
        if buf is None:
            return float("inf")
        free = buf.capacity - resident.get(buf.name, 0.0)
        for name in rooms:
            free += max(0.0, self.srams[name].capacity - resident.get(name, 0.0))
        return free

    def finish(self, plan: OpPlan) -> OpPlan:
        """Complete a compute kind's plan: SRAM ports can stretch the unit's time; storage energy."""
        plan.unit_s = plan.compute_s
        plan.compute_s = max(plan.compute_s, self._sram_time(plan))
        self._charge_storage(plan)
        return plan

    # ---- shared by the compute kinds ----------------------------------------------
    def stage(self, plan: OpPlan, ctx: OpContext, key: str, moved: float, used: float) -> None:
        """Buffer traffic of one operand: an off-chip operand is staged into the buffer
        (``moved`` bytes, an output drained out of it); the unit reads ``used`` bytes of an
        input from, or writes an output to, the SRAM holding it."""
        where, buf = ctx.place[key], ctx.buf
        sram = where if where in self.srams else (buf.name if buf else None)
        if sram is None:
            return
        off_chip = where in self.memories
        if key == "out":
            add(plan.sram_write, sram, used)
            if off_chip:
                add(plan.sram_read, sram, moved)
        else:
            add(plan.sram_read, sram, used)
            if off_chip:
                add(plan.sram_write, sram, moved)

    def traffic(self, plan: OpPlan, ctx: OpContext, key: str, nbytes: float,
                pattern: str = "sequential", access_bytes: float = 0.0) -> None:
        """Record the off-chip transfers of an operand, split across the tiers of its home;
        reads of a prefetched role come from its prefetch target (the executor copies them
        there first)."""
        if not ctx.streamed[key]:
            return
        kind = "write" if key == "out" else "read"
        target = self.prefetch_to.get(ctx.tensors[key]["role"]) if kind == "read" else None
        for tier, frac in [(target, 1.0)] if target else ctx.homes[key]:
            if nbytes * frac > 0:
                plan.transfers.append((tier, kind, nbytes * frac, pattern, access_bytes))

    def too_small(self, ctx: OpContext, need: str) -> DesignError:
        buf, free = ctx.buf, ctx.free
        cap = f"{buf.capacity / 2**10:.0f} KiB" if buf is not None else "0 B"
        return DesignError(
            f"SRAM '{buf.name if buf else '?'}' ({cap}, {max(free, 0) / 2**10:.0f} KiB free beside resident "
            f"data) is too small for any tile of op '{ctx.op.name}': {need}")

    def gemm_plan(self, ctx: OpContext, unit_name: str, compute_s: float, min_kt: int, min_nt: int,
                  element_reads: tuple[float, float]) -> OpPlan:
        """A GEMM tiled into the buffer: off-chip traffic per operand from the tiling, buffer
        traffic from the unit's operand reads (``element_reads``: elements of a and b)."""
        op = ctx.op
        m, n, k, reps = op.gemm()
        eb = op.elem_bytes
        plan = OpPlan(op, unit_name, compute_s, 1, macs=float(m * n * k * reps))  # (op.macs)
        s = ctx.streamed
        tiling = tile_gemm(m, n, k, eb, ctx.free, s["a"], s["b"], s["out"], min_kt, min_nt, ctx.min_tile)
        if tiling is None:
            need = 2 * eb * (s["a"] * min_kt + s["b"] * min_kt * min(n, min_nt) + s["out"] * min(n, min_nt))
            raise self.too_small(ctx, f"the smallest tile needs {need / 2**10:.0f} KiB (double-buffered)")
        plan.n_tiles = tiling.n_tiles * reps
        ra, rb = element_reads
        for key, t in ctx.tensors.items():
            if key == "a":
                moved, used = t["bytes"] * tiling.reads_a, ra * reps * eb
            elif key == "b":
                moved, used = t["bytes"] * tiling.reads_b, rb * reps * eb
            else:  # "out": written once
                moved, used = t["bytes"] * 1, t["bytes"]
            if s[key]:
                self.traffic(plan, ctx, key, moved)
            self.stage(plan, ctx, key, moved, used)
        return plan

    def vector_plan(self, ctx: OpContext, unit_name: str, rate_ops_per_s: float) -> OpPlan:
        """An elementwise op streamed through the buffer at ``rate_ops_per_s``."""
        op = ctx.op
        plan = OpPlan(op, unit_name, op.vector_ops / rate_ops_per_s, 1, vector_ops=float(op.vector_ops))
        per_el = sum(t["bytes"] for k, t in ctx.tensors.items() if ctx.streamed[k]) / max(op.elements, 1)
        n_tiles = tile_vector(op.elements, per_el, ctx.free, ctx.min_tile)
        if n_tiles is None:
            raise self.too_small(ctx, f"one element needs {2 * per_el:.0f} B (double-buffered)")
        plan.n_tiles = n_tiles
        for key, t in ctx.tensors.items():
            random = key == "in" and op.pattern == "random" and op.access_bytes
            self.traffic(plan, ctx, key, t["bytes"], "random" if random else "sequential",
                         op.access_bytes if random else 0.0)
            self.stage(plan, ctx, key, t["bytes"], t["bytes"])
        return plan

    def _sram_time(self, plan: OpPlan) -> float:
        """The buffer's bandwidth can bound the unit: bytes through each SRAM / its bandwidth.

        Records each SRAM's port time in ``plan.sram_s``: the executor holds the SRAM's port
        for it, so units that read one SRAM at the same time share its bandwidth."""
        t = 0.0
        for name in set(plan.sram_read) | set(plan.sram_write):
            moved = plan.sram_read.get(name, 0.0) + plan.sram_write.get(name, 0.0)
            plan.sram_s[name] = moved / self.srams[name].bandwidth
            t = max(t, plan.sram_s[name])
        return t

    def _charge_storage(self, plan: OpPlan) -> None:
        for name, b in plan.sram_read.items():
            add(plan.energy, name, b * BITS * self.srams[name].read_energy)
        for name, b in plan.sram_write.items():
            add(plan.energy, name, b * BITS * self.srams[name].write_energy)
        charge_transfers(plan, self.models)


def migration_plans(program, models: dict) -> dict[str, list[OpPlan]]:
    """Copies of prefetched tensors (``prefetch: {role, from, to}``), keyed by the task that
    reads them first: DMA transfers on both tiers' buses, costed by their models."""
    from dse.sim.tiling import PIPELINE_TILES

    arch = program.arch
    if not arch.prefetch:
        return {}
    by_role = {pf.role: pf for pf in arch.prefetch}
    out: dict[str, list[OpPlan]] = {}
    copied: set[str] = set()
    for task in program.tasks:
        op = task.op
        for key, t in (program.sizes.get(task.name) or op.tensor_bytes()).items():
            pf = by_role.get(t["role"])
            ident = program.operands[task.name][key]
            if pf is None or key == "out" or ident in copied:
                continue
            copied.add(ident)
            tiles = max(1, min(PIPELINE_TILES, int(t["bytes"] // MIN_TILE_BYTES)))
            mig = OpPlan(Op(f"{op.name}.prefetch_{key}", "vector", precision=op.precision, tag="prefetch"),
                         "dma", 0.0, tiles)
            mig.migration(t["bytes"], pf.source, pf.target, models)
            out.setdefault(op.name, []).append(mig)
    return out
