"""Operations of a workload and what each one costs in MACs, vector ops and bytes.

An op knows its arithmetic and the bytes of each tensor it touches, labelled by
role (weights, activations, kv_cache, embeddings, optimizer_state, gradients).
Where those bytes live is the architecture's business (its placement), not the op's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from typing import Literal

from dse.datatypes import PRECISION_BYTES, ROLES  # noqa: E402,F401 (the shared vocabulary)

OpKind = Literal["matmul", "conv2d", "vector"]


@dataclass(frozen=True, slots=True)
class Op:
    """One node of a workload DAG.

    kind="matmul": out[M,N] = a[M,K] @ b[K,N], repeated ``count`` times (batched
        matmul, e.g. attention heads). ``a_role``/``b_role``/``out_role`` say what
        each operand is (b is usually weights; for attention both are activations
        or kv_cache).
    kind="conv2d": NCHW convolution, lowered to a GEMM by im2col for timing.
    kind="vector": ``elements`` outputs, each costing ``ops_per_element`` vector
        ops and reading ``inputs`` operands of the same size. ``pattern="random"``
        with ``access_bytes`` marks gathers (embedding look-ups) whose reads are
        small and scattered.
    """

    name: str
    kind: OpKind
    precision: str = "int8"
    deps: tuple[str, ...] = ()
    # matmul
    m: int = 0
    n: int = 0
    k: int = 0
    count: int = 1
    a_role: str = "activations"
    b_role: str = "weights"
    out_role: str = "activations"
    # conv2d
    batch: int = 1
    in_channels: int = 0
    out_channels: int = 0
    height: int = 0
    width: int = 0
    kernel_h: int = 1
    kernel_w: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    # vector
    elements: int = 0
    ops_per_element: float = 1.0
    inputs: int = 1
    in_role: str = "activations"
    pattern: Literal["sequential", "random"] = "sequential"
    access_bytes: int = 0
    # free-form label of the layer type (e.g. "attention", "ffn", "router")
    tag: str = ""
    #: operands ("a", "b", "out", "in") fused with a neighbouring op: produced and consumed
    #: tile by tile on chip, never stored (e.g. attention scores under FlashAttention)
    on_chip: tuple[str, ...] = ()
    #: names the weight tensor (operand b) when several ops share it (an RNN's recurrent
    #: weights at every step, a training step's dgrad); default: the op's own
    weight_id: str = ""
    #: storage formats of operands that differ from ``precision`` (the compute format): int4
    #: weights dequantised into a bf16 GEMM, an fp8 KV cache read by bf16 attention;
    #: "" = same as ``precision``. ``a_precision`` also covers a vector op's input.
    a_precision: str = ""
    b_precision: str = ""
    out_precision: str = ""

    @property
    def weight_key(self) -> str:
        return self.weight_id or self.name

    def tensor_id(self, key: str) -> str:
        """Identity of operand ``key``'s tensor: shared weights by their weight_id, others per op."""
        return self.weight_key if key == "b" else f"{self.name}.{key}"

    # ---- derived geometry -------------------------------------------------
    @property
    def elem_bytes(self) -> float:
        return PRECISION_BYTES[self.precision]

    def operand_bytes(self, key: str) -> float:
        """Bytes per element of operand ``key`` ("a", "b", "out", "in") in its storage format."""
        fmt = {"a": self.a_precision, "in": self.a_precision, "b": self.b_precision,
               "out": self.out_precision}[key]
        return PRECISION_BYTES[fmt or self.precision]

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width of a conv2d."""
        ho = (self.height + 2 * self.padding - self.kernel_h) // self.stride + 1
        wo = (self.width + 2 * self.padding - self.kernel_w) // self.stride + 1
        return ho, wo

    def gemm(self) -> tuple[int, int, int, int]:
        """(M, N, K, repeats) of the GEMM(s) this op performs; (0,0,0,0) for vector ops.

        conv2d maps by im2col: M = batch*Ho*Wo output pixels, N = out_channels/groups
        filters, K = in_channels/groups*kh*kw, repeated once per group.
        """
        if self.kind == "matmul":
            return self.m, self.n, self.k, self.count
        if self.kind == "conv2d":
            ho, wo = self.out_hw
            g = self.groups
            return (self.batch * ho * wo, self.out_channels // g,
                    self.in_channels // g * self.kernel_h * self.kernel_w, g)
        return 0, 0, 0, 0

    # ---- arithmetic --------------------------------------------------------
    @property
    def macs(self) -> int:
        m, n, k, r = self.gemm()
        return m * n * k * r

    @property
    def vector_ops(self) -> float:
        return self.elements * self.ops_per_element if self.kind == "vector" else 0.0

    @property
    def ops(self) -> float:
        """Operations as dse counts them: 2 per MAC plus vector ops."""
        return 2.0 * self.macs + self.vector_ops

    # ---- bytes by tensor role ---------------------------------------------
    def tensor_bytes(self) -> dict[str, dict[str, float]]:
        """Bytes of each operand once: {"a"|"b"|"out"|"in": {"role":..., "bytes":...}}.

        These are compulsory sizes (each tensor read or written once); the
        engine's tiling decides how often they are actually moved.
        """
        ea, eb, eo = self.operand_bytes("a"), self.operand_bytes("b"), self.operand_bytes("out")
        if self.kind == "matmul":
            return {
                "a": {"role": self.a_role, "bytes": self.m * self.k * self.count * ea},
                "b": {"role": self.b_role, "bytes": self.k * self.n * self.count * eb},
                "out": {"role": self.out_role, "bytes": self.m * self.n * self.count * eo},
            }
        if self.kind == "conv2d":
            ho, wo = self.out_hw
            return {
                "a": {"role": self.a_role,
                      "bytes": self.batch * self.in_channels * self.height * self.width * ea},
                "b": {"role": self.b_role,
                      "bytes": self.out_channels * (self.in_channels // self.groups)
                      * self.kernel_h * self.kernel_w * eb},
                "out": {"role": self.out_role, "bytes": self.batch * self.out_channels * ho * wo * eo},
            }
        read = self.elements * self.inputs * ea
        if self.pattern == "random" and self.access_bytes:
            # each gather touches whole rows of access_bytes
            read = ceil(read / self.access_bytes) * self.access_bytes
        return {
            "in": {"role": self.in_role, "bytes": read},
            "out": {"role": self.out_role, "bytes": self.elements * eo},
        }

    def bytes_by_role(self) -> dict[str, float]:
        """Compulsory bytes per role (reads plus writes)."""
        out: dict[str, float] = {}
        for t in self.tensor_bytes().values():
            out[t["role"]] = out.get(t["role"], 0.0) + t["bytes"]
        return out

    @property
    def arithmetic_intensity(self) -> float:
        """Ops per compulsory byte moved."""
        total = sum(self.bytes_by_role().values())
        return self.ops / total if total else float("inf")


@dataclass
class Workload:
    """A named DAG of ops plus the number of samples it processes."""

    name: str
    ops: list[Op]
    samples: int = 1
    params: dict = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def total_ops(self) -> float:
        return sum(op.ops for op in self.ops)

    def bytes_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for op in self.ops:
            for role, b in op.bytes_by_role().items():
                out[role] = out.get(role, 0.0) + b
        return out

    def weight_bytes(self) -> float:
        """Distinct weight bytes: each weight tensor counted once, however many ops read it."""
        seen: dict[str, float] = {}
        for op in self.ops:
            for key, t in op.tensor_bytes().items():
                if t["role"] == "weights" and key != "out":
                    seen[op.tensor_id(key)] = t["bytes"]
        return sum(seen.values())


#: Most MACs, vector ops or bytes one op or one workload may count: beyond it int64 table
#: columns overflow (2^62 MACs is about 5e18, a thousand seconds of an exa-op machine).
MAX_TOTAL = 2**62


def op_size_problem(op: Op) -> tuple[str, str] | None:
    """(field, message) when an op counts more MACs, vector ops or bytes than dse can hold."""
    if op.macs > MAX_TOTAL:
        return ("m" if op.kind == "matmul" else "batch"), f"{op.macs:.3g} MACs in one op is out of range (at most 2^62)"
    if op.kind == "matmul":
        return None  # each operand's elements (a product of two of m, n, k, count) <= its MACs
    if op.vector_ops > MAX_TOTAL:
        return "elements", f"{op.vector_ops:.3g} vector ops in one op is out of range (at most 2^62)"
    for key, t in op.tensor_bytes().items():
        if t["bytes"] > MAX_TOTAL:
            return "kind", f"operand {key} of {t['bytes']:.3g} bytes is out of range (at most 2^62)"
    return None


def check_sizes(workload: "Workload") -> None:
    """SpecError naming the op when a workload counts more than dse can hold (see MAX_TOTAL)."""
    from dse.errors import SpecError

    total = 0
    for op in workload.ops:
        bad = op_size_problem(op)
        if bad:
            raise SpecError(f"op '{op.name}': {bad[1]}", where=workload.name, field=bad[0])
        total += op.macs
    if total > MAX_TOTAL:
        raise SpecError(f"{total:.3g} MACs in all is out of range (at most 2^62)", where=workload.name)
