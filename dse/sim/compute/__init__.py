"""Compute kinds: how each kind of unit runs an op, chosen by the unit's ``kind:`` in YAML.

A kind is one module with one class: ``rank(unit, op)`` says how well the unit suits an op
(lower is better, None: cannot run it; the mapper takes the best-ranked units) and
``plan(coster, unit, ctx)`` returns the op's plan on the unit. Adding a kind is its spec
class in dse/spec/architecture.py, one module here and one entry in ``KINDS``.
"""
from __future__ import annotations

from dse.sim.compute.imc import ImcKind
from dse.sim.compute.systolic import SystolicKind
from dse.sim.compute.vector import VectorKind

KINDS = {"systolic": SystolicKind(), "vector": VectorKind(), "imc": ImcKind()}


def kind_of(unit):
    """The compute model of a unit, by the ``kind`` its YAML names."""
    return KINDS[unit.kind]


def plan_op(coster, op, unit_name: str, homes: dict, resident: dict):
    """``op``'s plan on a unit, its operands where the allocator put them (the cost pass)."""
    unit = coster.units[unit_name]
    return coster.finish(kind_of(unit).plan(coster, unit, coster.context(op, unit_name, homes, resident)))
