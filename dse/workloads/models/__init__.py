"""Workload generators, one module per model family; importing this registers them."""
from dse.workloads.models import bert, dlrm, gemm, gpt, llm, lstm, mlp, mobilenet, moe, resnet  # noqa: F401
