"""`dse validate`: dse against published measurements of real hardware (not peaks).

Each case (``dse/validate/cases/*.yaml``) names a chip or memory system, a published
measurement with its citation, and the exact configuration that reproduces it in dse;
its ``kind`` (``workload``, ``memory``, ...) picks the module that runs it
(``dse/validate/kinds/``). ``run_validation()`` returns one row per case with the
measured value, dse's value and the relative error.
"""
from __future__ import annotations

__all__ = ["run_validation", "load_cases", "summarise", "KINDS"]


def __getattr__(name: str):
    if name in ("run_validation", "summarise"):
        from dse.validate import run
        return getattr(run, name)
    if name == "load_cases":
        from dse.validate.cases_file import load_cases
        return load_cases
    if name == "KINDS":
        from dse.validate.kinds import KINDS
        return KINDS
    raise AttributeError(name)
