"""Compute kinds: how each kind of unit runs an op, chosen by the unit's ``kind:`` in YAML.

A kind is one module with one class: ``rank(unit, op)`` says how well the unit suits an op
(lower is better, None: cannot run it; it may depend on the op's kind and precision only;
the mapper takes the best-ranked units) and
``plan(coster, unit, ctx)`` returns the op's plan on the unit. Adding a kind is its spec
class in dse/spec/architecture.py, one module here and one entry in ``KINDS``.
"""
from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

from dse.sim.compute.imc import ImcKind
from dse.sim.compute.systolic import SystolicKind
from dse.sim.compute.vector import VectorKind
from dse.sim.cost import OpContext
from dse.workloads.ops import Op

KINDS = {"systolic": SystolicKind(), "vector": VectorKind(), "imc": ImcKind()}


def kind_of(unit):
    """The compute model of a unit, by the ``kind`` its YAML names."""
    return KINDS[unit.kind]


#: what an op's plan depends on: every field but its name, dependencies and weight identity
_shape = attrgetter(*(f.name for f in fields(Op) if f.name not in ("name", "deps", "weight_id")))


def plan_op(coster, op, unit_name: str, homes: dict, resident: dict, tensors: dict | None = None):
    """``op``'s plan on a unit, its operands where the allocator put them (the cost pass);
    ``tensors``: its ``tensor_bytes()``, if known.

    Ops of the same shape with operands in the same places cost the same where their tiles
    have the same free bytes beside what else is resident (a transformer's layers, a ResNet
    stage's blocks; where nothing is staged, whatever the free bytes): the plan is made once
    per design and reused with the op's own name."""
    key = (_shape(op), unit_name, tuple(homes.items()), coster.imc_copies.get(op.name))
    known = coster.planned.get(key)
    if known is None:
        ctx, rooms = coster.placed(op, unit_name, homes, tensors)
        known = coster.planned[key] = (ctx, rooms, any(ctx.streamed.values()), {})
    ctx, rooms, staged, plans = known
    free = coster.free_bytes(ctx, rooms, resident) if staged else None
    plan = plans.get(free)
    if plan is None:
        if free is None:
            free = coster.free_bytes(ctx, rooms, resident)
        ctx = OpContext(op, ctx.buf, ctx.tensors, ctx.place, ctx.homes, ctx.streamed, free, ctx.min_tile)
        unit = coster.units[unit_name]
        plan = plans[free if staged else None] = coster.finish(kind_of(unit).plan(coster, unit, ctx))
    return plan if plan.op is op else plan.for_op(op)
