"""A single matrix multiplication, the simplest workload."""
from __future__ import annotations

from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import Workload
from dse.workloads.registry import register


@register("gemm", "one matrix multiplication: out (m x n) = activations (m x k) @ weights (k x n)")
def gemm(m: int = 1024, n: int = 1024, k: int = 1024, precision: str = "int8") -> Workload:
    """One GEMM; ``samples`` is 1 (the whole GEMM is the unit of work)."""
    check_positive(m=m, n=n, k=k)
    g = Graph(precision)
    g.matmul("gemm", m=m, n=n, k=k)
    return g.workload("gemm", samples=1)
