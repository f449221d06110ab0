"""The map pass: which compute units may run each task, and which layers IMC tiles hold.

Units are ranked by their compute kind (dse/sim/compute/): an op may run on any of the
best-ranked units, and the executor gives it the first of them that is free. IMC tiles
hold the weight GEMMs that fit their crossbars, in workload order; spare crossbars hold
extra copies of the longest layers (as ISAAC replicates layers to balance its pipeline).
A tile with ``use: faster`` keeps a layer only where it beats the digital units on it.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from math import ceil

from dse.errors import DesignError
from dse.sim.allocate import Allocation
from dse.sim.compute import kind_of, plan_op
from dse.sim.cost import Coster, OpPlan
from dse.sim.program import Program
from dse.spec.architecture import Architecture
from dse.workloads.ops import Op


@dataclass
class Mapping:
    #: task -> the units it may run on (best first)
    choices: dict[str, list[str]]
    #: (task, unit) -> the op's plan on that unit
    plans: dict[tuple[str, str], OpPlan]
    #: task -> the IMC unit holding its weights
    imc: dict[str, str]
    #: task -> copies of its weights in crossbars
    imc_copies: dict[str, int]
    #: crossbars a copy of a GEMM's weights needs, by shape (``crossbars_for``'s memo)
    crossbars: dict = field(default_factory=dict)


def crossbars_for(params, op: Op, memo: dict | None = None) -> int:
    """Crossbars one copy of an op's weights needs (every group of a grouped conv included);
    ``memo`` keeps the answers by GEMM shape (the layers of a network share a few)."""
    m, n, k, reps = op.gemm()
    bits = int(8 * op.elem_bytes)
    key = (id(params), m, n, k, reps, bits)  # (params: one per IMC unit, alive all run)
    need = memo.get(key) if memo is not None else None
    if need is None:
        from dse.tech.imc import crossbars_for as _crossbars  # IMC designs only

        need = _crossbars(params, m, n, k, reps, weight_bits=bits)
        if memo is not None:
            memo[key] = need
    return need


def compatible_units(arch: Architecture, op: Op, imc: dict[str, str] | None = None,
                     memo: dict | None = None) -> list[str]:
    """Units that can run an op: the IMC tile holding its weights, else the best-ranked units
    (a unit's rank depends on the op's kind and precision alone: ``memo`` keeps them)."""
    if imc and op.name in imc:
        return [imc[op.name]]
    if memo is not None and (op.kind, op.precision) in memo:
        return memo[(op.kind, op.precision)]
    ranked = [(r, u.name) for u in arch.compute if (r := kind_of(u).rank(u, op)) is not None]
    best = min((r for r, _ in ranked), default=None)
    units = [name for r, name in ranked if r == best]
    if memo is not None:
        memo[(op.kind, op.precision)] = units
    return units


def map_tasks(program: Program, alloc: Allocation, coster: Coster) -> Mapping:
    """Choose units for every task and plan each task on each of its candidate units."""
    arch = program.arch
    crossbars: dict = {}
    imc_alloc = allocate_imc_replicated(arch, [t.op for t in program.tasks], crossbars)
    imc = {name: unit for name, (unit, _) in imc_alloc.items()}
    copies = {name: c for name, (_, c) in imc_alloc.items()}
    coster.imc_copies = copies
    choices: dict[str, list[str]] = {}
    plans: dict[tuple[str, str], OpPlan] = {}
    ranked: dict = {}
    homes_of, operands, sizes = alloc.homes, program.operands, program.sizes
    imc_units = {u.name: u for u in arch.compute if u.kind == "imc"}
    for task in program.tasks:
        op = task.op
        name = op.name
        homes = {key: homes_of[tid] for key, tid in operands[name].items()}
        resident = alloc.resident[name]
        tensors = sizes.get(name)
        units = None if imc and name in imc else ranked.get((op.kind, op.precision))  # (the memo, inline)
        if units is None:
            units = compatible_units(arch, op, imc, ranked)
        if not units:
            raise DesignError(f"no compute unit can run op '{op.name}' ({op.kind})")
        for u in units:
            plans[(name, u)] = plan_op(coster, op, u, homes, resident, tensors)
        if op.kind == "conv2d" and op.groups > 1 and name not in imc:
            # grouped and depthwise convolutions: packed on the arrays or run on the vector
            # units, whichever is faster
            others = [u.name for u in arch.compute if u.kind == "vector" and u.name not in units]
            for u in others:
                plans[(name, u)] = plan_op(coster, op, u, homes, resident, tensors)
            if others and min(plans[(name, u)].compute_s for u in others) < \
                    min(plans[(name, u)].compute_s for u in units):
                units = others
        imc_unit = imc_units.get(imc.get(name))
        if imc_unit is not None and imc_unit.use == "faster":
            # crossbars only when they beat the digital units on this layer, weight traffic
            # included (a GEMV on a GPU is bound by streaming its weights, not by its MACs)
            digital = compatible_units(arch, op)
            for u in digital:
                plans[(name, u)] = plan_op(coster, op, u, homes, resident, tensors)
            best = min((plans[(name, u)].bound_s() for u in digital), default=float("inf"))
            if best < plans[(name, imc[name])].bound_s():
                units = digital
                del imc[name]
        choices[name] = units
    return Mapping(choices, plans, imc, copies, crossbars)


def allocate_imc_replicated(arch: Architecture, ops: list[Op],
                            memo: dict | None = None) -> dict[str, tuple[str, int]]:
    """op -> (IMC unit, copies of its weights). Crossbars left over after every layer that
    fits has one copy hold extra copies of all of them (as ISAAC replicates layers), so
    copies of a layer process different input vectors side by side (``memo``: see
    ``crossbars_for``)."""
    out: dict[str, tuple[str, int]] = {}
    memo = {} if memo is None else memo
    for unit in (u for u in arch.compute if u.kind == "imc"):
        from dse.tech.imc import map_gemm  # IMC designs only

        params = unit.params()
        left, mine = params.crossbars, []
        held: dict[str, str] = {}  # weight tensor -> the op whose crossbars hold it
        fits: dict[tuple, bool] = {}  # does a GEMM's weight matrix fit the tile, by shape
        for op in ops:
            if op.name in out or op.kind == "vector" or op.b_role != "weights":
                continue
            if op.weight_key in held:  # shares weights already in the crossbars
                out[op.name] = (unit.name, 1)
                continue
            m, n, k, _ = op.gemm()
            bits = int(8 * op.elem_bytes)
            whole = fits.get((m, n, k, bits))
            if whole is None:
                whole = fits[(m, n, k, bits)] = map_gemm(params, m, n, k, weight_bits=bits).fits
            need = crossbars_for(params, op, memo)
            if whole and need <= left:
                out[op.name] = (unit.name, 1)
                held[op.weight_key] = op.name
                mine.append((op, m, need))
                left -= need
        # spare crossbars hold extra copies of the layers that take longest (most input
        # vectors per copy), one copy at a time, as ISAAC balances its layer pipeline
        extra = replicate([m for _, m, _ in mine], [need for _, _, need in mine], left)
        copies = {op.name: c for (op, _, _), c in zip(mine, extra)}
        for name, c in copies.items():
            out[name] = (unit.name, c)
    return out


def replicate(vectors: list[int], need: list[int], left: int) -> list[int]:
    """Copies of each layer (``vectors``: input vectors it processes, ``need``: crossbars a
    copy takes) once ``left`` spare crossbars hold extra copies: one at a time, each to the
    layer with the most vectors per copy (the first in order among equals), a layer dropping
    out once it cannot take another (too few crossbars left, or a copy per vector).

    Copies go to layers above the current most vectors per copy, so the state where no layer
    has more than T vectors per copy is every layer at ceil(v / T) copies (at least one),
    whatever order they came in; every copy on the way was affordable where the whole of it
    is. That state is set at once for the least T the crossbars pay for (a bisection), and
    only the rest is given one copy, or one run of copies, at a time (tests/test_imc.py
    checks the answer against one copy at a time)."""
    layers = list(zip(vectors, need))

    by_vectors = sorted(layers, reverse=True)

    def cost(per: int) -> int:  # crossbars that bring every layer to at most ``per`` vectors per copy
        total = 0
        for v, n in by_vectors:  # (a layer needs another copy where v > per: the first ones)
            if v <= per:
                break
            total += n * (-(-v // per) - 1)
        return total

    lo, hi = 1, max(vectors, default=1)  # cost(hi) = 0: one copy each
    if cost(lo) > left:
        while hi - lo > 1:  # cost(lo) > left >= cost(hi)
            mid = (lo + hi) // 2
            if cost(mid) > left:
                lo = mid
            else:
                hi = mid
        lo = hi
    left -= cost(lo)
    copies = [-(-v // lo) for v in vectors]
    heap = [(-ceil(v / c), i) for i, (v, c) in enumerate(zip(vectors, copies))]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, i = pop(heap)
        c, v, cost_i = copies[i], vectors[i], need[i]
        if cost_i > left or c >= v:
            continue
        # the copy goes to it, and so do the next ones while it would be popped again next
        # (its key still below every other) and may take another
        while True:
            c += 1
            left -= cost_i
            key = (-ceil(v / c), i)
            if heap and key > heap[0]:
                push(heap, key)
                break
            if cost_i > left or c >= v:
                break
        copies[i] = c
    return copies


def imc_utilisation(arch: Architecture, ops: list[Op], assigned: dict[str, str],
                    copies: dict[str, int] | None = None, memo: dict | None = None) -> dict[str, float]:
    """Fraction of each IMC unit's crossbars holding weights (copies included; ``memo``: see
    ``crossbars_for``)."""
    if all(u.kind != "imc" for u in arch.compute):
        return {}
    used: dict[str, float] = {}
    counted: set[str] = set()
    params = {u.name: u.params() for u in arch.compute if u.kind == "imc"}
    copies = copies or {}
    for op in ops:
        unit = assigned.get(op.name)
        if unit is None or op.weight_key in counted:
            continue
        counted.add(op.weight_key)
        used[unit] = used.get(unit, 0.0) + crossbars_for(params[unit], op, memo) * copies.get(op.name, 1)
    return {u.name: used.get(u.name, 0.0) / u.params().crossbars for u in arch.compute if u.kind == "imc"}
