"""The partition pass: which chip runs which tasks.

A system of one chip runs everything on it (identity). Several chips, with parallelism
degrees and the collectives between them, are what this pass grows into; the passes after
it take one chip's program at a time.
"""
from __future__ import annotations

from dse.errors import DesignError
from dse.sim.program import Program


def partition(program: Program) -> list[Program]:
    """One program per chip (today: the program itself, on its one chip)."""
    if len(program.system.chips) != 1:
        raise DesignError(f"the single-chip engine got a system of {len(program.system.chips)} chips")
    return [program]
