"""Systems of many chips: links, topologies, collectives, parallelism, one training step.

``simulate_system(system, workload, parallelism) -> Result`` is the entry point. Names are
imported on first use, so that `dse` starts without loading the engine.
"""
from __future__ import annotations

__all__ = ["ParallelismSpec", "System", "SystemSpec", "load_system", "simulate_system"]

_HOME = {"ParallelismSpec": "dse.system.spec", "SystemSpec": "dse.system.spec",
         "System": "dse.system.simulate", "load_system": "dse.system.simulate",
         "simulate_system": "dse.system.simulate"}


def __getattr__(name: str):
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'dse.system' has no attribute {name!r}")
