"""Systems of many chips: links, topologies, collectives, parallelism, one training step.

``simulate_system(system, workload, parallelism) -> Result`` is the entry point.
"""
from dse.system.simulate import System, load_system, simulate_system
from dse.system.spec import ParallelismSpec, SystemSpec

__all__ = ["ParallelismSpec", "System", "SystemSpec", "load_system", "simulate_system"]
