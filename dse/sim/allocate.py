"""The allocator pass: where every tensor of a program lives, decided once, by liveness.

Persistent tensors (weights, KV cache, embeddings, optimizer state) are placed first,
role by role in ``PERSISTENT_ROLES`` order and within a role in the order ops first touch
them: on their role's SRAM while it has room, else on their role's memory tier, spilling
into the following tiers (in file order) when full; a tensor that straddles the end of a
tier is split across two. Transient tensors (activations, gradients) are then placed op
by op: an op's new operands go on their role's SRAM while it has room beside everything
live there (inputs first, largest first; an SRAM that stages tiles keeps 1/8 for them),
otherwise on the first memory tier with room; a consumer reads a tensor where its producer
put it; a tensor is freed after its last consumer. The same pass answers ``fits_memory``
(no second capacity model) and reports the peak occupancy of every SRAM and tier.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dse.errors import DesignError
from dse.sim.program import INPUT_KEYS, PERSISTENT_ROLES, Program, Tensor
from dse.units import fmt

#: A tensor's home: (SRAM or memory tier, fraction of the tensor) pairs; most have one.
Home = tuple[tuple[str, float], ...]

#: Share of a staging SRAM that placement leaves free for the tiles streaming through it.
STAGING_SHARE = 1 / 8

_INF = float("inf")


@dataclass
class Allocation:
    """Every tensor's home, what is live on each SRAM while each task runs, and the peaks."""

    homes: dict[str, Home]
    #: task -> SRAM -> bytes resident there while the task runs (its own operands included)
    resident: dict[str, dict[str, float]]
    #: SRAM or tier -> largest bytes held at once
    peak_bytes: dict[str, float]
    #: bytes that found no room anywhere (0: the program fits)
    overflow_bytes: float = 0.0
    #: bytes left free in the memory tiers at the fullest moment (>= 0)
    headroom_bytes: float = 0.0
    #: the first tensor that did not fit (for the error message)
    overflow: str = ""
    roles: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.overflow_bytes <= 0

    @property
    def margin_bytes(self) -> float:
        """Bytes beyond what the memories hold (> 0: does not fit; <= 0: minus the headroom)."""
        return self.overflow_bytes if self.overflow_bytes > 0 else -self.headroom_bytes

    def home(self, tensor: str) -> Home:
        return self.homes[tensor]

    def role_split(self, role: str) -> list[tuple[str, float]]:
        """Where a role's bytes went, as fractions by location (for the summary)."""
        by = self.roles.get(role, {})
        total = sum(by.values())
        return [(where, b / total) for where, b in by.items()] if total else []


class _Space:
    """Free bytes of every SRAM and tier, with peaks."""

    def __init__(self, program: Program):
        arch = program.arch
        staging = {arch.buffer_of(u).name for u in arch.compute if arch.buffer_of(u) is not None}
        self.cap = {s.name: s.capacity * ((1 - STAGING_SHARE) if s.name in staging else 1.0) for s in arch.sram}
        self.cap.update({m.name: m.capacity for m in arch.memories})
        self.used = {name: 0.0 for name in self.cap}
        self.peak = dict(self.used)
        self.tiers = [m.name for m in arch.memories]

    def room(self, where: str) -> float:
        return self.cap[where] - self.used[where]

    def take(self, where: str, nbytes: float) -> None:
        self.used[where] += nbytes
        self.peak[where] = max(self.peak[where], self.used[where])

    def free(self, home: Home, nbytes: float) -> None:
        for where, frac in home:
            self.used[where] -= nbytes * frac

    def spill(self, first: str, nbytes: float) -> tuple[Home, float]:
        """Place ``nbytes`` on tier ``first`` and the tiers after it (then those before);
        returns the home and the bytes that found no room."""
        if 0.0 < nbytes < _INF and nbytes <= self.room(first):
            # (all of it on the first tier: the loop's first step, as it would find it; a
            # finite x / x is exactly 1.0)
            self.take(first, nbytes)
            return ((first, 1.0),), 0.0
        start = self.tiers.index(first)
        left, parts = nbytes, []
        for tier in self.tiers[start:] + self.tiers[:start]:
            take = min(left, max(0.0, self.room(tier)))
            if take > 0:
                parts.append((tier, take / nbytes))
                self.take(tier, take)
                left -= take
            if left <= 1e-9 * nbytes:
                return tuple(parts), 0.0
        return tuple(parts), left


def allocate(program: Program) -> Allocation:
    """Place every tensor of a one-chip program (see the module docstring)."""
    arch = program.arch
    space = _Space(program)
    srams = {s.name for s in arch.sram}
    homes: dict[str, Home] = {}
    roles: dict[str, dict[str, float]] = {}
    overflow, first_overflow = 0.0, ""

    placement = arch.placement
    default_tier = arch.memories[0].name if arch.memories else None
    used, peak, cap = space.used, space.peak, space.cap

    def place(t: Tensor, sram_first: bool) -> None:
        nonlocal overflow, first_overflow
        where = placement.get(t.role, default_tier)  # arch.tier_of
        if where in srams:
            nbytes = t.bytes
            if sram_first and nbytes <= cap[where] - used[where]:  # space.take, inline
                now = used[where] = used[where] + nbytes
                if now > peak[where]:
                    peak[where] = now
                homes[t.id] = ((where, 1.0),)
                _count(roles, t.role, where, nbytes)
                return
            where = space.tiers[0]  # does not fit on chip: off chip, first tier
        home, left = space.spill(where, t.bytes) if t.bytes > 0 else (((where, 1.0),), 0.0)
        if left > 0:
            overflow += left
            first_overflow = first_overflow or t.role
            home = home or ((where, 1.0),)
        homes[t.id] = home
        for w, frac in home:
            _count(roles, t.role, w, t.bytes * frac)

    tensors, operands = program.tensors, program.operands
    by_role: dict[str, list[Tensor]] = {}
    for t in tensors.values():
        if t.role in PERSISTENT_ROLES:
            by_role.setdefault(t.role, []).append(t)
    for role in PERSISTENT_ROLES:
        for t in by_role.get(role, ()):
            if not _written_in_place(program, t):
                place(t, sram_first=True)
        extra = _extra_persistent(program, role)
        if extra is not None:
            place(extra, sram_first=True)

    order = {task.name: i for i, task in enumerate(program.tasks)}
    # a tensor is freed after the task that uses it last (consumers are in task order):
    # tensors by that task's index
    dies: list[list[Tensor]] = [[] for _ in program.tasks]
    for t in tensors.values():
        if t.consumers:
            last = order[t.consumers[-1]]
        else:
            last = order.get(t.producer, -1)
        if last >= 0:
            dies[last].append(t)
    resident: dict[str, dict[str, float]] = {}
    live: set[str] = set()
    for i, task in enumerate(program.tasks):
        name = task.name
        mine = operands[name]
        fused = task.op.on_chip
        new = []
        for key, tid in mine.items():
            if tid in homes:
                continue
            t = tensors[tid]
            if t.role in PERSISTENT_ROLES:
                if key == "out":  # an in-place update of model state
                    homes[tid] = _role_home(roles, t.role, arch.tier_of(t.role))
            elif key not in fused:
                new.append((key == "out", -t.bytes, t))
        if new:
            # inputs first (a tiled GEMM may re-read them; an output is written once), largest first
            if len(new) > 1:
                new.sort(key=lambda e: e[:2])
            for _, _, t in new:
                place(t, sram_first=True)
                live.add(t.id)
        resident[name] = {s: used[s] for s in srams}
        for t in dies[i]:
            if t.id in live:
                space.free(homes[t.id], t.bytes)
                live.discard(t.id)
        if fused:
            for key in fused:
                if key in mine:
                    homes.setdefault(mine[key], ())  # produced and consumed tile by tile: never stored
    headroom = sum(space.cap[t] - space.peak[t] for t in space.tiers)
    alloc = Allocation(homes, resident, dict(space.peak), overflow, max(0.0, headroom), first_overflow, roles)
    return alloc


def _count(roles: dict, role: str, where: str, nbytes: float) -> None:
    by = roles.setdefault(role, {})
    by[where] = by.get(where, 0.0) + nbytes


def _role_home(roles: dict, role: str, default: str) -> Home:
    by = roles.get(role, {})
    total = sum(by.values())
    return tuple((w, b / total) for w, b in by.items()) if total else ((default, 1.0),)


def _written_in_place(program: Program, t: Tensor) -> bool:
    """An op's output of a persistent role updates that state in place (it takes no new room)."""
    return t.producer is not None and t.id == f"{t.producer}.out"


def _extra_persistent(program: Program, role: str) -> Tensor | None:
    """Embedding tables larger than the rows the ops touch occupy their full size."""
    if role != "embeddings":
        return None
    params = program.workload.params if isinstance(program.workload.params, dict) else {}
    table = float(params.get("embedding_table_bytes") or 0.0)
    touched = sum(t.bytes for t in program.tensors.values() if t.role == "embeddings" and t.producer is None)
    if table <= touched:
        return None
    return Tensor(f"{program.workload.name}.embedding_table", table - touched, "embeddings")


def require_fit(program: Program, alloc: Allocation) -> None:
    """DesignError naming the role that found no room, with every tier's capacity."""
    if alloc.fits:
        return
    arch = program.arch
    role = alloc.overflow or "tensors"
    need = sum(t.bytes for t in program.tensors.values() if t.role == role and not _written_in_place(program, t))
    need += (_extra_persistent(program, role).bytes if _extra_persistent(program, role) else 0.0)
    tiers = ", ".join(f"{m.name}: {fmt(m.capacity, 'bytes')}" for m in arch.memories)
    plural = role in ("weights", "embeddings", "activations", "gradients")
    raise DesignError(f"{role.replace('_', ' ')} of workload '{program.workload.name}' ({fmt(need, 'bytes')}) "
                      f"exceed{'' if plural else 's'} every memory tier ({tiers})")


__all__ = ["Allocation", "Home", "INPUT_KEYS", "allocate", "require_fit"]
