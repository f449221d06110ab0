"""The shape of a decoder LLM, read from a Hugging Face-style ``config.json``.

Only shape numbers are read (no weights, no network). Bundled configs for a few open
models live in ``configs/`` and are found by name (``llama-3-8b``); any other name is
read as a path to a config.json on disk.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dse.errors import SpecError
from dse.workloads.ops import PRECISION_BYTES

#: Activation functions whose Hugging Face MLPs are gated (gate_proj, up_proj, down_proj).
GATED_ACTS = ("silu", "swish", "swiglu")


@dataclass(frozen=True)
class Formats:
    """Number formats of the weights, the activations (the compute format) and the KV cache."""

    weights: str = "bf16"
    activations: str = "bf16"
    kv_cache: str = "bf16"

    def __post_init__(self):
        for role in ("weights", "activations", "kv_cache"):
            fmt = getattr(self, role)
            if fmt not in PRECISION_BYTES:
                raise SpecError(f"unknown number format {fmt!r} (known: {', '.join(PRECISION_BYTES)})",
                                field=f"{role}_precision" if role != "activations" else "precision")


@dataclass(frozen=True)
class LlmShape:
    """Sizes of a decoder-only transformer with GQA, gated MLPs and optional MoE layers."""

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    d_head: int
    d_ff: int
    vocab: int
    max_context: int
    gated: bool = True
    #: routed experts per MoE layer (0: a dense model)
    experts: int = 0
    top_k: int = 0
    expert_d_ff: int = 0
    #: intermediate size of the always-active shared expert(s) together (0: none)
    shared_d_ff: int = 0
    #: every ``moe_every``-th layer is MoE (Qwen's decoder_sparse_step), counting from 1
    moe_every: int = 1
    #: tokens an expert takes at most = ceil(capacity_factor * tokens * top_k / experts);
    #: 0 = no limit (inference servers drop no token)
    capacity_factor: float = 0.0
    tied_embeddings: bool = False

    @property
    def moe(self) -> bool:
        return self.experts > 0

    def is_moe_layer(self, i: int) -> bool:
        return self.moe and (i + 1) % self.moe_every == 0

    @property
    def group(self) -> int:
        """Query heads sharing one K,V head (1: multi-head; heads: multi-query)."""
        return self.heads // self.kv_heads

    # ---- parameter and byte counts (from the shape alone) -----------------------
    def layer_params(self, i: int) -> int:
        d, dh = self.d_model, self.d_head
        attn = d * self.heads * dh * 2 + 2 * d * self.kv_heads * dh  # q, o; k, v
        mats = 3 if self.gated else 2
        if self.is_moe_layer(i):
            mlp = d * self.experts + self.experts * mats * d * self.expert_d_ff + mats * d * self.shared_d_ff
        else:
            mlp = mats * d * self.d_ff
        return attn + mlp + 2 * d  # two norms

    @property
    def params(self) -> int:
        """Every weight of the model: embeddings, layers, final norm, LM head (unless tied)."""
        emb = self.vocab * self.d_model * (1 if self.tied_embeddings else 2)
        return emb + sum(self.layer_params(i) for i in range(self.layers)) + self.d_model

    def weight_bytes(self, fmt: Formats) -> float:
        return self.params * PRECISION_BYTES[fmt.weights]

    def kv_bytes_per_token(self, fmt: Formats) -> float:
        """K and V of one token in every layer: 2 x layers x kv_heads x d_head elements."""
        return 2 * self.layers * self.kv_heads * self.d_head * PRECISION_BYTES[fmt.kv_cache]


def bundled_models() -> list[str]:
    """Names of the bundled configs (file stems of configs/*.json)."""
    folder = resources.files("dse.workloads.models") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_config(model: str) -> LlmShape:
    """A bundled model by name, or a config.json (or a folder holding one) on disk."""
    folder = resources.files("dse.workloads.models") / "configs"
    bundled = folder / f"{model.lower()}.json"
    if bundled.is_file():
        return parse_config(json.loads(bundled.read_text()), name=model.lower(), where=f"{model}.json")
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise SpecError(f"no bundled model of that name ({', '.join(bundled_models())}) "
                        "and no config.json at that path", where=model)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(f"line {exc.lineno}: not valid JSON ({exc.msg})", where=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object of model settings", where=str(path))
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return parse_config(data, name=name, where=str(path))


def _int(data: dict, key: str, where: str, *aliases: str, default: int | None = None) -> int:
    for k in (key, *aliases):
        if k in data and data[k] is not None:
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise SpecError(f"must be a positive integer, got {v!r}", where=where, field=k)
            return v
    if default is None:
        raise SpecError("required field is missing", where=where, field=key)
    return default


def parse_config(data: dict, *, name: str, where: str) -> LlmShape:
    """Read the shape fields of a Hugging Face config (Llama, Mistral/Mixtral, Qwen2-MoE,
    DeepSeek-MoE key names)."""
    d = _int(data, "hidden_size", where, "n_embd", "d_model")
    heads = _int(data, "num_attention_heads", where, "n_head")
    layers = _int(data, "num_hidden_layers", where, "n_layer")
    vocab = _int(data, "vocab_size", where)
    context = _int(data, "max_position_embeddings", where, "n_positions", "max_sequence_length")
    kv_heads = _int(data, "num_key_value_heads", where, default=heads)
    if heads % kv_heads:
        raise SpecError(f"num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}",
                        where=where, field="num_key_value_heads")
    d_head = _int(data, "head_dim", where, default=d // heads if d % heads == 0 else 0) or None
    if d_head is None:
        raise SpecError(f"hidden_size={d} is not divisible by num_attention_heads={heads}; give head_dim",
                        where=where, field="head_dim")
    has_experts = any(data.get(k) for k in ("num_local_experts", "num_experts", "n_routed_experts"))
    experts = _int(data, "num_local_experts", where, "num_experts", "n_routed_experts") if has_experts else 0
    act = str(data.get("hidden_act") or data.get("activation_function") or "silu")
    fields = dict(name=name, layers=layers, d_model=d, heads=heads, kv_heads=kv_heads, d_head=d_head,
                  vocab=vocab, max_context=context, gated=act in GATED_ACTS,
                  tied_embeddings=bool(data.get("tie_word_embeddings", False)))
    if not experts:
        return LlmShape(d_ff=_int(data, "intermediate_size", where, "n_inner", default=4 * d), **fields)
    top_k = _int(data, "num_experts_per_tok", where)
    if top_k > experts:
        raise SpecError(f"num_experts_per_tok={top_k} exceeds the {experts} experts", where=where,
                        field="num_experts_per_tok")
    d_ff = _int(data, "intermediate_size", where)
    expert_ff = _int(data, "moe_intermediate_size", where, default=d_ff)  # Mixtral: experts of d_ff
    if data.get("shared_expert_intermediate_size"):  # Qwen2-MoE: one shared expert of this size
        shared = _int(data, "shared_expert_intermediate_size", where)
    elif data.get("n_shared_experts"):  # DeepSeek-MoE: n shared experts of the routed size
        shared = expert_ff * _int(data, "n_shared_experts", where)
    else:
        shared = 0
    every = _int(data, "decoder_sparse_step", where, "moe_layer_freq", default=1)
    capacity = data.get("capacity_factor", 0.0) or 0.0  # not in HF configs: no token dropped by default
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)) or capacity < 0:
        raise SpecError(f"must be a number >= 0 (0: no limit), got {capacity!r}", where=where, field="capacity_factor")
    return LlmShape(d_ff=d_ff, experts=experts, top_k=top_k, expert_d_ff=expert_ff, shared_d_ff=shared,
                    moe_every=every, capacity_factor=float(capacity), **fields)
