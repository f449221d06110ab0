"""No op runs faster than min(peak compute, bandwidth x arithmetic intensity), whatever the design."""
from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dse.errors import DesignError
from dse.sim.engine import simulate
from dse.workloads.ops import PRECISION_BYTES, Op, Workload

from archs import toy

dims = st.integers(min_value=1, max_value=1500)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=dims, n=dims, k=dims,
    rows=st.integers(1, 64), cols=st.integers(1, 64),
    dataflow=st.sampled_from(["weight_stationary", "output_stationary", "input_stationary"]),
    bw=st.floats(1e8, 1e12), clock=st.floats(1e8, 3e9),
    buf_kib=st.integers(16, 4096), channels=st.integers(1, 8),
    precision=st.sampled_from(["int8", "bf16"]),
)
def test_no_op_beats_the_roofline(m, n, k, rows, cols, dataflow, bw, clock, buf_kib, channels, precision):
    arch = toy(compute__pe__rows=rows, compute__pe__cols=cols, compute__pe__dataflow=dataflow,
               compute__pe__clock=clock, compute__pe__macs_per_cycle={"int8": 1, "bf16": 0.5},
               compute__pe__energy_per_mac={"int8": "0.25 pJ", "bf16": "1 pJ"},
               placement={"weights": "dram", "activations": "dram"})
    arch = arch.model_copy(update={
        "memories": [arch.memories[0].model_copy(update={"bandwidth_per_channel": bw, "channels": channels})],
        "sram": [arch.sram[0].model_copy(update={"capacity": buf_kib * 1024.0})]})
    op = Op("g", "matmul", m=m, n=n, k=k, precision=precision)
    try:
        r = simulate(arch, Workload("g", [op]))
    except DesignError:
        assume(False)  # buffer too small for one fold of this array: not a runnable design
    eb = PRECISION_BYTES[precision]
    ops = 2.0 * m * n * k
    compulsory = (m * k + k * n + m * n) * eb       # each tensor moved at least once
    peak = 2.0 * rows * cols * clock * (1.0 if precision == "int8" else 0.5)
    roof = min(peak, bw * channels * ops / compulsory)
    assert ops / r["latency_s"] <= roof * (1 + 1e-9)
