"""dse: design-space exploration of AI accelerators and their memory hierarchies."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_architecture", "load_workload", "simulate", "run_study", "Result"]


def __getattr__(name: str):
    # Lazy imports keep `import dse` cheap and free of side effects.
    if name == "load_architecture":
        from dse.spec.loader import load_architecture
        return load_architecture
    if name == "load_workload":
        from dse.workloads import load_workload
        return load_workload
    if name == "simulate":
        from dse.sim.engine import simulate
        return simulate
    if name == "Result":
        from dse.results import Result
        return Result
    if name == "run_study":
        from dse.search.study import run_study
        return run_study
    raise AttributeError(name)
