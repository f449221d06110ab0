"""Turn an inference workload into one training step: forward, backward, optimizer.

Backward of every matmul/conv is two ops of the forward's MACs each: ``dgrad``
(gradient of the input activations) and ``wgrad`` (gradient of the weights,
written with role ``gradients``), so a step costs 3x the forward MACs. The input
gradient of the very first layer, which frameworks skip, is kept so that this
rule is exact. One Adam update (fp32, ~10 ops per parameter) closes the step.
Embedding tables get a sparse in-place update of the rows they gathered, not Adam.
"""
from __future__ import annotations

from dataclasses import replace

from dse.workloads.ops import Op, Workload

#: Adam per parameter: two moment updates, bias corrections, sqrt, divide, update.
ADAM_OPS_PER_ELEMENT = 10.0
#: Mixed-precision training keeps master weights and moments in fp32.
OPTIMIZER_PRECISION = "fp32"


def _weight_elements(op: Op) -> int:
    """Parameters held by ``op`` (its weight operand), 0 if none."""
    if op.b_role != "weights" or op.kind == "vector":
        return 0
    if op.kind == "matmul":
        return op.k * op.n * op.count
    return op.out_channels * (op.in_channels // op.groups) * op.kernel_h * op.kernel_w


def _backward(op: Op, grad_deps: tuple[str, ...]) -> list[Op]:
    """Backward ops of one forward op, depending on ``grad_deps`` (gradients of its consumers)."""
    deps = (op.name, *grad_deps)
    base = dict(precision=op.precision, tag=(op.tag + ".bwd").lstrip("."))
    if op.kind == "matmul":
        # out[M,N] = a[M,K] b[K,N]:  da[M,K] = dout[M,N] b^T[N,K],  db[K,N] = a^T[K,M] dout[M,N]
        b_grad_role = "gradients" if op.b_role == "weights" else op.b_role
        return [
            Op(name=op.name + ".dgrad", kind="matmul", deps=deps, m=op.m, n=op.k, k=op.n,
               count=op.count, a_role="activations", b_role=op.b_role, weight_id=op.weight_key,
               out_role="activations", **base),
            Op(name=op.name + ".wgrad", kind="matmul", deps=deps, m=op.k, n=op.n, k=op.m,
               count=op.count, a_role=op.a_role if op.a_role != "weights" else "activations",
               b_role="activations", out_role=b_grad_role, **base),
        ]
    if op.kind == "conv2d":
        ho, wo = op.out_hw
        ops = []
        if op.kernel_h % 2 and op.kernel_w % 2:
            # dgrad: a conv of dout (Cout channels, Ho x Wo) with the flipped kernel back to
            # Cin channels, same MACs as the forward. For strided convs the true dX is
            # stride^2 larger than the Ho x Wo grid written here.
            ops.append(Op(name=op.name + ".dgrad", kind="conv2d", deps=deps, batch=op.batch,
                          in_channels=op.out_channels, out_channels=op.in_channels,
                          height=ho, width=wo, kernel_h=op.kernel_h, kernel_w=op.kernel_w,
                          stride=1, padding=op.kernel_h // 2, groups=op.groups,
                          b_role=op.b_role, weight_id=op.weight_key, **base))
        else:
            m, n, k, r = op.gemm()
            ops.append(Op(name=op.name + ".dgrad", kind="matmul", deps=deps, m=m, n=k, k=n,
                          count=r, b_role=op.b_role, weight_id=op.weight_key, **base))
        # wgrad: dW[Cout/g, Cin/g·kh·kw] = dout[Cout/g, N·Ho·Wo] @ im2col(x)[N·Ho·Wo, Cin/g·kh·kw]
        # (the im2col operand counts each input pixel kh·kw/stride² times).
        m, n, k, r = op.gemm()
        ops.append(Op(name=op.name + ".wgrad", kind="matmul", deps=deps, m=n, n=k, k=m, count=r,
                      b_role="activations",
                      out_role="gradients" if op.b_role == "weights" else "activations", **base))
        return ops
    # Vector op: the gradient has the output's size and reads the incoming gradient
    # plus the saved inputs. Embedding gathers scatter their gradient back into the
    # touched rows (a sparse in-place update, role embeddings).
    if op.pattern == "random" and op.in_role == "embeddings":
        return [replace(op, name=op.name + ".bwd", deps=deps, in_role="gradients",
                        out_role="embeddings", **base)]
    return [replace(op, name=op.name + ".bwd", deps=deps, inputs=op.inputs + 1,
                    in_role="activations", out_role="activations", pattern="sequential",
                    access_bytes=0, **base)]


def _no_kv_cache(op: Op) -> Op:
    """Training keeps no KV cache: K and V are ordinary activations saved for backward."""
    roles = {r: "activations" for r in ("a_role", "b_role", "out_role", "in_role")
             if getattr(op, r) == "kv_cache"}
    return replace(op, **roles) if roles else op


def training_workload(wl: Workload) -> Workload:
    """One training step of ``wl``: its ops, then backward in reverse order, then Adam."""
    wl = replace(wl, ops=[_no_kv_cache(op) for op in wl.ops])
    consumers: dict[str, list[str]] = {op.name: [] for op in wl.ops}
    for op in wl.ops:
        for d in op.deps:
            consumers[d].append(op.name)
    grad_of: dict[str, str] = {}  # forward op -> name of the op producing its input gradient
    backward: list[Op] = []
    wgrads: list[str] = []
    for op in reversed(wl.ops):
        grad_deps = tuple(grad_of[c] for c in consumers[op.name])
        ops = _backward(op, grad_deps)
        backward.extend(ops)
        grad_of[op.name] = ops[0].name
        wgrads.extend(o.name for o in ops if o.out_role == "gradients")
    params = sum(_weight_elements(op) for op in wl.ops)
    tail: list[Op] = []
    if params:
        # Reads weights, gradients and two moments (inputs=4), writes the new weights.
        tail.append(Op(name="optimizer.adam", kind="vector", precision=OPTIMIZER_PRECISION,
                       deps=tuple(wgrads), elements=params, inputs=4,
                       ops_per_element=ADAM_OPS_PER_ELEMENT, in_role="optimizer_state",
                       out_role="weights", tag="optimizer"))
    return replace(wl, ops=[*wl.ops, *backward, *tail],
                   params={**wl.params, "train": True, "parameters": params})
