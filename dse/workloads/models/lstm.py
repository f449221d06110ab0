"""Stacked LSTM: per layer, one input projection over all time steps, then a
recurrent matmul and a gate/cell update per step (the cuDNN formulation)."""
from __future__ import annotations

from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import Workload
from dse.workloads.registry import register

# Per hidden unit and step: 3 sigmoids + 2 tanh (~4 ops each), bias adds on 4 gates,
# and c = f*c + i*g, h = o*tanh(c) (4 ops): about 28 ops, reading 4 gate pre-activations.
CELL_OPS = 28.0


@register("lstm", "stacked LSTM over a sequence (input projection batched over time)")
def lstm(layers: int = 2, hidden: int = 1024, input: int = 1024, seq: int = 128,
         batch: int = 32, precision: str = "bf16") -> Workload:
    """LSTM inference on ``batch`` sequences of ``seq`` steps; samples = batch (sequences).

    MACs per layer: seq·batch·4·hidden·(input_l + hidden), input_l = input for the
    first layer and hidden above it.
    """
    check_positive(layers=layers, hidden=hidden, input=input, seq=seq, batch=batch)
    g = Graph(precision)
    below: list[str] | None = None
    width = input
    for layer in range(layers):
        p = f"layer{layer}."
        xp = g.matmul(p + "x_proj", m=batch * seq, n=4 * hidden, k=width, deps=below, tag="lstm")
        h = None
        steps = []
        for t in range(seq):
            r = g.matmul(p + f"t{t}.h_proj", m=batch, n=4 * hidden, k=hidden,
                         deps=[d for d in (h,) if d], tag="lstm", weight_id=p + "W_hh")
            h = g.vector(p + f"t{t}.cell", batch * hidden, (xp, r), ops_per_element=CELL_OPS,
                         inputs=4, tag="lstm")
            steps.append(h)
        below = steps
        width = hidden
    return g.workload("lstm", samples=batch)
