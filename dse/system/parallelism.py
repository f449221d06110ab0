"""Splitting a model over chips: which ops each chip runs, what it keeps in memory and
where it synchronises.

Chips are ranked tensor-fastest, then data, then pipeline (Megatron-LM's default order),
so a tensor-parallel group is ``tensor`` neighbours, a data-parallel group is ``data`` chips
``tensor`` apart and a pipeline is ``pipeline`` chips ``tensor x data`` apart.

- **Tensor** (Megatron-LM, Shoeybi et al. 2019): Q/K/V and the first FFN matmul split their
  output columns (column-parallel), the attention output and second FFN matmul their inner
  dimension (row-parallel); attention heads are split; each layer all-reduces its
  activations twice forward (after the row-parallel matmuls) and twice backward (the input
  gradients of the column-parallel ones). The LM head is split over the vocabulary.
- **Sequence** (Korthikanti et al. 2022, the method): LayerNorm and residual ops split along
  the sequence within the tensor group; each all-reduce becomes a reduce-scatter plus an
  all-gather of the same total volume, so time is unchanged and activations shrink.
- **Pipeline**: layers split evenly over ``pipeline`` stages (x ``virtual_stages`` chunks
  each when interleaved); the embedding joins the first chunk, the final LayerNorm and LM
  head the last.
- **Expert**: the experts of an MoE layer are spread over ``expert`` data-parallel ranks;
  tokens reach them by an all-to-all and come back by another (twice more backward).
- **ZeRO** (Rajbhandari et al., SC'20): stage 1 shards optimizer state over the data-parallel
  group, 2 also gradients, 3 also weights (gathered for each use: 1.5x the traffic).
- **Recomputation**: ``full`` keeps only each layer's input and recomputes the forward during
  backward; ``selective`` recomputes attention's score/softmax/context ops only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from dse.errors import DesignError
from dse.system.spec import ParallelismSpec
from dse.workloads.ops import Op, Workload

#: Mixed-precision Adam keeps an fp32 master copy and two fp32 moments: 4 + 4 + 4 = 12 bytes
#: per parameter (Rajbhandari et al., ZeRO, SC'20, K = 12).
OPTIMIZER_BYTES_PER_PARAM = 12.0

COLUMN = ("q_proj", "kv_proj", "qkv", "ffn1", "lm_head")
ROW = ("out_proj", "ffn2")
HEADS = ("scores", "context")
SPLIT_ELEMENTS = ("softmax", "gelu")
SEQUENCE = ("ln1", "ln2", "add1", "add2", "ln_f")
#: forward ops after which the tensor group all-reduces its output
TP_SYNC_FORWARD = ("out_proj", "ffn2", "embed")
#: backward ops (input gradients) after which it all-reduces
TP_SYNC_BACKWARD = ("q_proj.dgrad", "qkv.dgrad", "ffn1.dgrad", "lm_head.dgrad")
ATTENTION_CORE = ("scores", "softmax", "context")

_LAYER = re.compile(r"^layer(\d+)\.")


def suffix(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def layer_of(op: Op) -> int | None:
    m = _LAYER.match(op.name)
    return int(m.group(1)) if m else None


@dataclass
class Stage:
    """The ops one chip of a pipeline stage (or chunk) runs for one micro-batch."""

    index: int
    ops: list[Op]
    layers: list[int]
    #: expert-parallel rank whose experts these are (None: no experts)
    expert_rank: int | None = None
    #: bytes sent to the next stage per micro-batch (its activation) and back (the gradient)
    boundary_bytes: float = 0.0
    params: float = 0.0                    # parameters held per chip (before ZeRO)
    expert_params: float = 0.0             # of which expert weights
    activation_bytes: float = 0.0          # saved for backward per micro-batch
    tp_forward: dict[str, float] = field(default_factory=dict)   # op -> all-reduce bytes
    tp_backward: dict[str, float] = field(default_factory=dict)
    a2a_bytes: float = 0.0                 # each MoE all-to-all, per chip
    _signature: tuple | None = field(default=None, repr=False)

    def signature(self) -> tuple:
        """Identical for stages whose chips do identical work (layer numbers aside)."""
        if self._signature is None:
            self._signature = self._compute_signature()
        return self._signature

    def _compute_signature(self) -> tuple:
        return (self.expert_rank, tuple((_strip_layer(o.name), o.kind, o.m, o.n, o.k, o.count,
                                          o.elements, o.batch, o.in_channels, o.out_channels,
                                          o.height, o.width, o.precision) for o in self.ops))


def _strip_layer(name: str) -> str:
    return _LAYER.sub("layer.", name)


def check_degrees(par: ParallelismSpec, chips: int) -> None:
    if par.chips != chips:
        raise DesignError(f"parallelism data x tensor x pipeline = {par.data} x {par.tensor} x "
                          f"{par.pipeline} = {par.chips}, but the system has {chips} chips")


def _shard(op: Op, t: int, sequence: bool) -> Op:
    """One tensor-parallel rank's share of ``op``."""
    s = suffix(op.name)
    if t == 1:
        return op
    if s in COLUMN:
        if s != "lm_head" and op.n % t:
            raise DesignError(f"tensor={t} does not divide the {op.n} output columns of '{op.name}'")
        return replace(op, n=-(-op.n // t))
    if s in ROW:
        if op.k % t:
            raise DesignError(f"tensor={t} does not divide the {op.k} inner dimension of '{op.name}'")
        return replace(op, k=op.k // t)
    if s in HEADS:
        if op.count % t:
            raise DesignError(f"tensor={t} does not divide the attention heads of '{op.name}'")
        return replace(op, count=op.count // t)
    if s in SPLIT_ELEMENTS:
        return replace(op, elements=op.elements // t)
    if s in SEQUENCE and sequence:
        return replace(op, elements=op.elements // t)
    if op.kind == "vector":
        return op  # replicated in the tensor group (LayerNorm, residual, embedding look-up)
    raise DesignError(f"tensor parallelism does not know how to split op '{op.name}' "
                      "(it splits transformer layers: gpt, bert)")


def _is_expert(op: Op) -> bool:
    return op.name.startswith("expert") and op.tag == "expert"


def _expert_index(op: Op) -> int:
    return int(op.name.split(".", 1)[0][len("expert"):])


def weight_params(op: Op) -> float:
    """The weights an op holds (parameters, not bytes): K x N per matmul, the kernel per conv; none for
    a vector op or an op whose second operand is an activation."""
    if op.b_role != "weights" or op.kind == "vector":
        return 0.0
    if op.kind == "matmul":
        return float(op.k * op.n * op.count)
    return float(op.out_channels * (op.in_channels // op.groups) * op.kernel_h * op.kernel_w)


def split_model(wl: Workload, par: ParallelismSpec) -> list[list[Stage]]:
    """The stages (outer list: pipeline chunks in model order) of ``wl``, one per expert rank
    (inner list; one entry without expert parallelism). ``wl`` is one micro-batch, forward."""
    ops = wl.ops
    layers = sorted({i for o in ops if (i := layer_of(o)) is not None})
    chunks = par.pipeline * par.virtual_stages
    if chunks > 1:
        if not layers:
            raise DesignError(f"pipeline parallelism needs a layered model (gpt, bert); "
                              f"'{wl.name}' has no layer<i>. ops")
        if len(layers) % chunks:
            raise DesignError(f"{len(layers)} layers do not split evenly into {par.pipeline} pipeline "
                              f"stages x {par.virtual_stages} virtual stages")
    per = len(layers) // chunks if chunks > 1 else len(layers)
    experts = sorted({_expert_index(o) for o in ops if _is_expert(o)})
    if par.expert > 1 and not experts:
        raise DesignError(f"expert parallelism needs a mixture-of-experts model (moe); '{wl.name}' has no experts")
    if par.expert > 1 and len(experts) < par.expert:
        raise DesignError(f"expert={par.expert} exceeds the {len(experts)} experts of '{wl.name}'")
    out: list[list[Stage]] = []
    first_layer = layers[0] if layers else None
    for c in range(chunks):
        mine = set(layers[c * per:(c + 1) * per]) if chunks > 1 else set(layers)
        sel = []
        for o in ops:
            li = layer_of(o)
            if li is None:
                before = first_layer is None or ops.index(o) < _first_index(ops, first_layer)
                if (before and c == 0) or (not before and c == chunks - 1) or chunks == 1:
                    sel.append(o)
            elif li in mine:
                sel.append(o)
        ranks = range(par.expert) if experts else [None]
        row = []
        for r in ranks:
            row.append(_stage(c, sel, sorted(mine), r, par, wl))
        out.append(row)
    return out


def _first_index(ops: list[Op], layer: int) -> int:
    return next(i for i, o in enumerate(ops) if layer_of(o) == layer)


def _stage(c: int, sel: list[Op], layers: list[int], rank: int | None, par: ParallelismSpec,
           wl: Workload) -> Stage:
    names = {o.name for o in sel}
    kept: list[Op] = []
    for o in sel:
        if rank is not None and _is_expert(o):
            if _expert_index(o) % par.expert != rank:
                continue
            # each expert serves the tokens of every rank of its expert group
            if o.kind == "matmul":
                o = replace(o, m=o.m * par.expert)
            else:
                o = replace(o, elements=o.elements * par.expert)
        kept.append(o)
    kept_names = {o.name for o in kept}
    dropped = names - kept_names
    sharded = []
    for o in kept:
        deps = tuple(d for d in o.deps if d in kept_names)
        if len(deps) != len(o.deps) and any(d in dropped for d in o.deps):
            # an op fed by experts of other ranks waits for this rank's experts (or dispatch)
            deps = deps or tuple(d for d in ("dispatch",) if d in kept_names)
        o = replace(o, deps=deps)
        sharded.append(_shard(o, par.tensor, par.sequence) if not _is_expert(o) else o)
    st = Stage(c, sharded, layers, rank)
    st.params = sum(weight_params(o) for o in sharded)
    st.expert_params = sum(weight_params(o) for o in sharded if _is_expert(o))
    last = sel[-1] if sel else None
    if last is not None:
        st.boundary_bytes = last.tensor_bytes()["out"]["bytes"] if "out" in last.tensor_bytes() else 0.0
    for o in sel:  # all-reduce sizes: the full (unsharded) activation
        if par.tensor > 1 and suffix(o.name) in TP_SYNC_FORWARD:
            st.tp_forward[o.name] = o.tensor_bytes()["out"]["bytes"]
        if par.tensor > 1 and suffix(o.name) in ("q_proj", "qkv", "ffn1", "lm_head"):
            st.tp_backward[o.name + ".dgrad"] = o.tensor_bytes()["a"]["bytes"]
    if rank is not None:
        disp = next((o for o in sel if o.name == "dispatch"), None)
        if disp is not None:
            st.a2a_bytes = disp.tensor_bytes()["out"]["bytes"]
    st.activation_bytes = _saved_activations(sharded, par)
    return st


def _saved_activations(ops: list[Op], par: ParallelismSpec) -> float:
    """Bytes a chip keeps from the forward of one micro-batch until its backward."""
    def out_bytes(o: Op) -> float:
        if "out" in o.on_chip:
            return 0.0
        t = o.tensor_bytes()["out"]
        return t["bytes"] if t["role"] in ("activations", "kv_cache") else 0.0

    if par.recompute == "full":
        # each layer's input, plus one layer's activations alive while it is recomputed
        per_layer: dict[int, float] = {}
        inputs = 0.0
        for o in ops:
            li = layer_of(o)
            if li is None:
                inputs += out_bytes(o)
                continue
            per_layer[li] = per_layer.get(li, 0.0) + out_bytes(o)
            if suffix(o.name) in ("ln1",) or (suffix(o.name) == "qkv" and not any(
                    layer_of(p) == li and suffix(p.name) == "ln1" for p in ops)):
                inputs += o.tensor_bytes()["in" if o.kind == "vector" else "a"]["bytes"]
        return inputs + max(per_layer.values(), default=0.0)
    skip = ATTENTION_CORE if par.recompute == "selective" else ()
    return sum(out_bytes(o) for o in ops if suffix(o.name) not in skip)


@dataclass(frozen=True)
class Memory:
    """Bytes one chip holds at its peak, by what they are."""

    weights: float
    gradients: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations


def chip_memory(st: Stage, par: ParallelismSpec, in_flight: int, weight_bytes_per_param: float) -> Memory:
    """Peak memory of a chip of stage ``st`` holding ``in_flight`` micro-batches' activations."""
    dp = par.data
    ep_dp = max(1, dp // par.expert)   # replicas of an expert's weights
    dense = st.params - st.expert_params

    def over(n: float, group: int, stage: int) -> float:
        return n / group if par.zero >= stage else n

    weights = (over(dense, dp, 3) + over(st.expert_params, ep_dp, 3)) * weight_bytes_per_param
    grads = (over(dense, dp, 2) + over(st.expert_params, ep_dp, 2)) * weight_bytes_per_param
    opt = (over(dense, dp, 1) + over(st.expert_params, ep_dp, 1)) * OPTIMIZER_BYTES_PER_PARAM
    return Memory(weights, grads, opt, st.activation_bytes * in_flight)
